/**
 * Lambda Managed Instances in Lamina's Node.js runtime: what `AWS_LAMBDA_MAX_CONCURRENCY` changes.
 *
 * As AWS's runtime (aws-lambda-ric 4.x, and the Managed Instances Node.js page) does it:
 *
 * - worker threads give parallelism across vCPUs: `AWS_LAMBDA_NODEJS_WORKER_COUNT` of them, else
 *   one per vCPU of the environment (the engine says how many in LAMINA_VCPUS). With one worker
 *   the main thread serves itself. Init (the handler's import) runs once per worker thread;
 * - within a thread, invocations run concurrently: the loop asks `next` again as soon as it has
 *   an event, and the engine stops handing events out once the environment has its
 *   PerExecutionEnvironmentMaxConcurrency in flight. Invocations in one thread share the
 *   handler's module and its globals;
 * - each invocation's request id travels with its async context (AsyncLocalStorage), so
 *   `console.*` records carry their own requestId however invocations interleave;
 * - `_X_AMZN_TRACE_ID` is not set (one variable cannot hold several invocations' trace ids);
 * - answers are posted on connections of their own (the `next` connection stays parked).
 */

'use strict';

const { AsyncLocalStorage } = require('node:async_hooks');
const { Worker, isMainThread } = require('node:worker_threads');
const { Connection } = require('./client.cjs');


const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
const TENANT_ID = Symbol.for('aws.lambda.runtime.tenantId');

/** How many worker threads serve the environment. */
function workerCount(env) {
  const given = parseInt(env.AWS_LAMBDA_NODEJS_WORKER_COUNT || '', 10);
  if (given > 0) return given;
  const vcpus = parseInt(env.LAMINA_VCPUS || '', 10);
  return vcpus > 0 ? vcpus : 1;
}

/** Start `count` worker threads running this runtime; resolve with an exit code when all end. */
function runWorkers(count, file) {
  let code = 0;
  const ended = [];
  for (let i = 0; i < count; i++) {
    const worker = new Worker(file, { env: process.env, argv: [] });
    ended.push(new Promise((resolve) => {
      worker.on('error', () => {
        code = 1;
        resolve();
      });
      worker.on('exit', (exitCode) => {
        if (exitCode) code = exitCode;
        resolve();
      });
    }));
  }
  return Promise.all(ended).then(() => code);
}

/** The invocation each async context belongs to; console's records read it from here. */
function invocationStore() {
  const store = new AsyncLocalStorage();
  Object.defineProperty(globalThis, REQUEST_ID, {
    get: () => store.getStore()?.requestId, configurable: true,
  });
  Object.defineProperty(globalThis, TENANT_ID, {
    get: () => store.getStore()?.tenantId, configurable: true,
  });
  return store;
}

/** Keep-alive connections for answers, one request at a time each, reused when idle. */
class ConnectionPool {
  constructor(host, port, keep = 8) {
    this.host = host;
    this.port = port;
    this.keep = keep;
    this.idle = [];
  }

  async exchange(data) {
    let connection = this.idle.pop();
    const reused = connection !== undefined && connection.isOpen;
    if (!reused) connection = new Connection(this.host, this.port);
    let response;
    try {
      response = await connection.exchange(data);
    } catch (err) {
      connection.close();
      if (!reused) throw err;
      connection = new Connection(this.host, this.port);
      response = await connection.exchange(data);
    }
    if (connection.isOpen && this.idle.length < this.keep) this.idle.push(connection);
    else connection.close();
    return response;
  }
}

module.exports = { workerCount, runWorkers, invocationStore, ConnectionPool, isMainThread };

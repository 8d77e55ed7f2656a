/**
 * Lamina's Node.js runtime: loads a function's handler and serves it over the Lambda Runtime API.
 *
 * Started as `node --v8-pool-size=1 <Lambda's node flags> bootstrap.cjs` (runtime/bootstrap.py)
 * in the function's code directory, with the
 * environment of spec §9.5. Built-in modules only; runs on Node 18 and later.
 *
 * CommonJS, not ES modules, and one V8 worker thread: an ES-module entry point is read through
 * libuv's thread pool (four more threads), and V8 starts four workers by default. An idle
 * environment is frozen with SIGSTOP and thawed with SIGCONT, which wakes every thread of the
 * process twice; with 4 threads instead of 11 a freeze/thaw pair costs a third of the CPU
 * (3 on a node that has --disable-sigusr1, which runtime/bootstrap.py then passes).
 * A function that imports ES modules (or uses fs, dns, crypto, zlib asynchronously) starts the
 * thread pool as on AWS.
 *
 * Toward the function it behaves as AWS's Node.js runtime (aws-lambda-nodejs-runtime-interface-
 * client): handler loading and its error types (loader.cjs), the `context` object, console
 * logging (logging.cjs), error documents (errors.cjs), response streaming (streaming.cjs), and
 * the invocation model:
 *
 * - a handler that returns a promise is answered when the promise settles;
 * - otherwise the handler's callback (or context.done/succeed/fail) answers; with
 *   `callbackWaitsForEmptyEventLoop` (the default) the callback's result is posted only once the
 *   event loop is empty (Node's 'beforeExit'), else at once. A handler that neither returns a
 *   promise nor calls back is answered `null` when the event loop empties (a plain return value
 *   is ignored, as on AWS); an async one whose promise never settles fails with
 *   Runtime.NodeJsExit;
 * - an uncaught exception or unhandled rejection fails the current invocation (or the init)
 *   and ends the process (exit 129 / 128).
 *
 * With `AWS_LAMBDA_MAX_CONCURRENCY` (Lambda Managed Instances) invocations run concurrently,
 * in worker threads (concurrent.cjs, `serveConcurrent` below): a promise or a callback answers
 * at once (the event loop is never empty while `next` is parked), and an uncaught exception
 * ends the worker it happened in.
 */

'use strict';

const fs = require('node:fs');
const Module = require('node:module');
const { RuntimeClient, digits } = require('./client.cjs');
const { NodeJsExit, UnhandledPromiseRejection, errorDocument } = require('./errors.cjs');
const { handlerMetadata, installAwsLambdaGlobal, loadHandler } = require('./loader.cjs');
const { logError, patchConsole, setRequestContext, writeOut } = require('./logging.cjs');
const { ResponseStream } = require('./streaming.cjs');

const env = process.env;
const noop = () => {};
const SETTLED = Promise.resolve();
let onEmptyEventLoop = noop;
let current = null;
let exiting = false;

function isPromise(value) {
  return Boolean(value) && typeof value.then === 'function';
}

function exitQuietly() {
  process.exit(0);
}

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

/** `Number(text)` of the deadline header (digit by digit when it is digits). */
function deadlineOf(text) {
  const value = text === undefined ? -1 : digits(text);
  return value < 0 ? Number(text) : value;
}

/** The context's fields from the environment (read per invocation, as AWS's runtime does) and
 * from the event's headers, added to `context`. */
function addContextFields(context, headers) {
  const deadline = deadlineOf(headers['lambda-runtime-deadline-ms']);
  context.functionVersion = env.AWS_LAMBDA_FUNCTION_VERSION;
  context.functionName = env.AWS_LAMBDA_FUNCTION_NAME;
  context.memoryLimitInMB = env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE;
  context.logGroupName = env.AWS_LAMBDA_LOG_GROUP_NAME;
  context.logStreamName = env.AWS_LAMBDA_LOG_STREAM_NAME;
  context.clientContext = parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext');
  context.identity = parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity');
  context.invokedFunctionArn = headers['lambda-runtime-invoked-function-arn'];
  context.awsRequestId = headers['lambda-runtime-aws-request-id'];
  context.tenantId = headers['lambda-runtime-aws-tenant-id'];
  const getRemainingTimeInMillis = () => deadline - Date.now();
  context.getRemainingTimeInMillis = getRemainingTimeInMillis;
  return context;
}

/** Returns the object it is given, so that a subclass's private field lands on that object. */
class Stamped {
  constructor(target) {
    return target;
  }
}

/**
 * An invocation's state kept on its context in a private field: no reflection (keys, spread,
 * Reflect.ownKeys, JSON) sees it, and reading it is a field load, where a WeakMap from each
 * context to its state cost a hash insert and an ephemeron write barrier per invocation (a
 * thirtieth of the runtime's CPU per call).
 */
class InvocationState extends Stamped {
  #state;

  constructor(context, state) {
    super(context);
    this.#state = state;
  }

  static of(context) {
    return typeof context === 'object' && context !== null && #state in context
      ? context.#state : undefined;
  }
}

// `context.callbackWaitsForEmptyEventLoop`: one getter and one setter for every invocation's
// context, each context's value kept in its invocation's state (`wait`). Accessors made anew
// per invocation (an object literal's `get` and `set`) cannot share a hidden class: V8 turned
// every context into a dictionary, a twentieth of the runtime's time per invocation.
const WAIT_FOR_EMPTY_EVENT_LOOP = {
  get() {
    return InvocationState.of(this)?.wait;
  },
  set(value) {
    const state = InvocationState.of(this);
    if (state !== undefined) state.wait = value;
  },
  enumerable: true,
  configurable: true,
};

/** A context object whose first property is `callbackWaitsForEmptyEventLoop` (`state.wait`). */
function newContext(state) {
  const context = {};
  Object.defineProperty(context, 'callbackWaitsForEmptyEventLoop', WAIT_FOR_EMPTY_EVENT_LOOP);
  new InvocationState(context, state);
  return context;
}

function forwardTraceId(headers) {
  const traceId = headers['lambda-runtime-trace-id'];
  if (traceId) env._X_AMZN_TRACE_ID = traceId;
  else delete env._X_AMZN_TRACE_ID;
}

function firstCallOnly(state, fn) {
  return (...args) => {
    if (state.called) return;
    state.called = true;
    fn(...args);
  };
}

/**
 * One buffered invocation, from its event to its answer. Its state is an object and its steps
 * are methods: each invocation makes only the functions the handler may hold (the callback,
 * the context's succeed, fail and done), and callbacks rather than promises carry it along.
 * Each closure and promise is paid again in each of the 16 runtimes that see a sixteenth of
 * the calls each at 16 clients (V8's baseline tier).
 */
class Invocation {
  constructor(client, requestId, isAsync, accepted) {
    this.client = client;
    this.requestId = requestId;
    this.isAsync = isAsync;
    this.accepted = accepted; // (err, response): the answer's 202, or why there is none
    this.reported = false; // an answer is posted (fatal() reads it)
    this.called = false; // the callback, succeed, fail or done has been called
    this.wait = true; // context.callbackWaitsForEmptyEventLoop
  }

  /** True the first time the callback, succeed, fail or done is called. */
  first() {
    if (this.called) return false;
    return (this.called = true);
  }

  claim() {
    if (!this.reported) return (this.reported = true);
    console.error('Invocation has already been reported as done. Cannot call complete more ' +
      'than once per invocation.');
    return false;
  }

  complete(result) {
    if (!this.claim()) return;
    let payload;
    try {
      payload = JSON.stringify(result === undefined ? null : result);
    } catch {
      this.reportError(new Error('Unable to stringify response body'), true);
      return;
    }
    this.client.answerThenNext(this.client.responsePost(this.requestId, payload), this.accepted);
  }

  reportError(err, claimed = false) {
    if (!claimed && !this.claim()) return;
    logError('Invoke Error', err);
    this.client.answerThenNext(this.client.errorPostFor(this.requestId, errorDocument(err)),
      this.accepted);
  }

  /** context.done, succeed and fail, and a returned promise's outcome: answered at once. */
  done(err, result) {
    onEmptyEventLoop = noop;
    if (err !== undefined && err !== null) this.reportError(err);
    else this.complete(result);
  }

  /** The handler's callback: answered at once, or when the event loop is empty. */
  callback(err, result) {
    onEmptyEventLoop = noop;
    if (err !== undefined && err !== null) this.reportError(err);
    else if (!this.wait) this.complete(result);
    else onEmptyEventLoop = () => setImmediate(() => this.complete(result));
  }

  /** The event loop emptied before the handler answered. */
  emptyEventLoop() {
    onEmptyEventLoop = noop;
    if (this.isAsync) this.reportError(new NodeJsExit());
    else this.complete(null);
  }
}

/** Run one buffered invocation; `accepted(err, response)` with the answer's 202. */
function invoke(client, handler, meta, headers, body, accepted) {
  const invocation = new Invocation(client, headers['lambda-runtime-aws-request-id'],
    meta.isAsync, accepted);
  current = invocation;
  const succeed = (result) => {
    if (invocation.first()) invocation.done(null, result);
  };
  const fail = (err) => {
    if (invocation.first()) invocation.done(err ?? 'handled', null);
  };
  const callback = (err, result) => {
    if (invocation.first()) invocation.callback(err, result);
  };
  onEmptyEventLoop = () => invocation.emptyEventLoop();

  try {
    forwardTraceId(headers);
    const context = newContext(invocation);
    context.succeed = succeed;
    context.fail = fail;
    context.done = (err, result) => {
      if (invocation.first()) invocation.done(err, result);
    };
    addContextFields(context, headers);
    const result = handler(JSON.parse(body), context, callback);
    if (isPromise(result)) result.then(succeed, fail).catch(fail);
  } catch (err) {
    callback(err);
  }
}

/** One invocation of a streaming handler (spec §5.3); `next()` once it has been answered. */
function invokeStreaming(client, handler, meta, headers, body, next) {
  const requestId = headers['lambda-runtime-aws-request-id'];
  const transport = client.streamResponse(requestId);
  const stream = new ResponseStream(transport, meta.highWaterMark);
  const state = { wait: true };
  let failed = false;

  const scheduleNext = () => {
    onEmptyEventLoop = noop;
    if (!state.wait) next();
    else onEmptyEventLoop = () => setImmediate(next);
  };
  const fail = (err) => {
    if (failed) return;
    failed = true;
    logError('Invoke Error', err);
    stream.fail(errorDocument(err));
    transport.done.then(scheduleNext);
  };
  const finish = async (result) => {
    if (result !== undefined) console.warn('Streaming handlers ignore return values.');
    await transport.done;
    if (!stream.writableFinished) fail('Response stream is not finished.');
    else scheduleNext();
  };

  current = {
    requestId,
    get reported() {
      return transport.finished;
    },
    abort(err) {
      stream.fail(errorDocument(err));
      return transport.done;
    },
  };
  onEmptyEventLoop = () => (transport.finished ? next() : fail(new NodeJsExit()));

  try {
    forwardTraceId(headers);
    const context = addContextFields(newContext(state), headers);
    const result = handler(JSON.parse(body), stream, context);
    if (!isPromise(result)) fail('Streaming does not support non-async handlers.');
    else result.then(finish).catch(fail);
  } catch (err) {
    fail(err);
  }
}

/** Ask for an event, run it, and ask again once it has been answered. */
function serve(client, handler, meta) {
  const askNext = () => client.nextEvent(onEvent);
  const accepted = (err, response) => {
    if (err) exitQuietly();
    else if (response.status >= 500) process.exit(1);
    else askNext();
  };
  let event = null;
  const run = () => {
    const { headers, body } = event;
    event = null;
    setRequestContext(headers['lambda-runtime-aws-request-id'], headers['lambda-runtime-aws-tenant-id']);
    if (meta.streaming) invokeStreaming(client, handler, meta, headers, body, askNext);
    else invoke(client, handler, meta, headers, body, accepted);
  };
  const onEvent = (err, response) => {
    if (err) exitQuietly();
    if (response.status !== 200) {
      writeOut(`Runtime API next failed with status ${response.status}: ${response.body.slice(0, 200)}\n`);
      process.exit(1);
    }
    // the handler runs in a microtask, as AWS's runtime calls it after an `await`: what it
    // queues with process.nextTick runs after its first promise continuations, not before. A
    // reaction to a settled promise, not queueMicrotask(), which wraps each callback in an
    // AsyncResource (a twentieth of the runtime's time per invocation in its first minute)
    event = response;
    SETTLED.then(run);
  };
  askNext();
}

/**
 * Managed Instances: take events as `next` hands them and run each at once in its own async
 * context (its request id for console's records); the engine keeps the number in flight within
 * PerExecutionEnvironmentMaxConcurrency.
 */
async function serveConcurrent(client, handler, meta, concurrent) {
  const store = concurrent.invocationStore();
  const answers = new concurrent.ConnectionPool(client.host, client.port);
  const run = meta.streaming ? invokeStreamingConcurrent : invokeConcurrent;
  for (;;) {
    const { status, headers, body } = await client.next().catch(exitQuietly);
    if (status !== 200) {
      writeOut(`Runtime API next failed with status ${status}: ${body.slice(0, 200)}\n`);
      process.exit(1);
    }
    const context = {
      requestId: headers['lambda-runtime-aws-request-id'],
      tenantId: headers['lambda-runtime-aws-tenant-id'],
    };
    setImmediate(() => store.run(context, () => run(client, answers, handler, meta, headers,
      body)));
  }
}

/** One buffered invocation among others (Managed Instances). */
function invokeConcurrent(client, answers, handler, meta, headers, body) {
  const requestId = headers['lambda-runtime-aws-request-id'];
  const invocationId = headers['lambda-runtime-invocation-id'];
  const echo = invocationId ? `Lambda-Runtime-Invocation-Id: ${invocationId}\r\n` : '';
  const path = `/2018-06-01/runtime/invocation/${encodeURIComponent(requestId)}`;
  let reported = false;
  const claim = () => {
    if (!reported) return (reported = true);
    console.error('Invocation has already been reported as done. Cannot call complete more ' +
      'than once per invocation.');
    return false;
  };
  const reportError = (err, claimed = false) => {
    if (!claimed && !claim()) return;
    logError('Invoke Error', err);
    answers.exchange(client.errorPost(`${path}/error`, errorDocument(err), echo)).catch(noop);
  };
  const complete = (result) => {
    if (!claim()) return;
    let payload;
    try {
      payload = JSON.stringify(result === undefined ? null : result);
    } catch {
      reportError(new Error('Unable to stringify response body'), true);
      return;
    }
    answers.exchange(client.post(`${path}/response`, payload, echo)).catch(noop);
  };
  const done = (err, result) => {
    if (err !== undefined && err !== null) reportError(err);
    else complete(result);
  };
  const once = { called: false };
  const succeed = firstCallOnly(once, (result) => done(null, result));
  const fail = firstCallOnly(once, (err) => done(err ?? 'handled', null));
  const context = {
    callbackWaitsForEmptyEventLoop: false,
    succeed,
    fail,
    done: firstCallOnly(once, done),
  };
  const callback = firstCallOnly(once, done);
  try {
    addContextFields(context, headers);
    const result = handler(JSON.parse(body), context, callback);
    if (isPromise(result)) result.then(succeed, fail).catch(fail);
    else if (handler.length < 3) succeed(result); // no callback to wait for
  } catch (err) {
    callback(err);
  }
}

/** One streamed invocation among others (Managed Instances). */
function invokeStreamingConcurrent(client, answers, handler, meta, headers, body) {
  const requestId = headers['lambda-runtime-aws-request-id'];
  const transport = client.streamResponse(requestId);
  const stream = new ResponseStream(transport, meta.highWaterMark);
  let failed = false;
  const fail = (err) => {
    if (failed) return;
    failed = true;
    logError('Invoke Error', err);
    stream.fail(errorDocument(err));
  };
  const finish = async (result) => {
    if (result !== undefined) console.warn('Streaming handlers ignore return values.');
    await transport.done;
    if (!stream.writableFinished) fail('Response stream is not finished.');
  };
  try {
    const context = addContextFields({ callbackWaitsForEmptyEventLoop: false }, headers);
    const result = handler(JSON.parse(body), stream, context);
    if (!isPromise(result)) fail('Streaming does not support non-async handlers.');
    else result.then(finish).catch(fail);
  } catch (err) {
    fail(err);
  }
}

/** Managed Instances: an uncaught exception or unhandled rejection ends this worker (its
 * invocations in flight are answered by the engine's timeout); the others serve on. */
function installConcurrentHandlers() {
  process.on('uncaughtException', (err) => {
    logError('Uncaught Exception', err);
    process.exit(129);
  });
  process.on('unhandledRejection', (reason, promise) => {
    logError('Unhandled Promise Rejection', new UnhandledPromiseRejection(reason, promise));
    process.exit(128);
  });
}

/** An uncaught exception or unhandled rejection: fail what is running, then exit. */
function fatal(client, err, code) {
  if (exiting) return;
  exiting = true;
  const document = errorDocument(err);
  let posted;
  if (current === null) posted = client.postErrorAside(null, document);
  else if (current.reported) posted = Promise.resolve();
  else if (current.abort) posted = current.abort(err);
  else {
    current.reported = true;
    posted = client.postErrorAside(current.requestId, document);
  }
  posted.catch(noop).then(() => process.exit(code));
}

function installProcessHandlers(client) {
  process.on('uncaughtException', (err) => {
    logError('Uncaught Exception', err);
    fatal(client, err, 129);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const err = new UnhandledPromiseRejection(reason, promise);
    logError('Unhandled Promise Rejection', err);
    fatal(client, err, 128);
  });
  process.on('beforeExit', () => onEmptyEventLoop());
}

/**
 * A spare runtime (`--standby`, spares.py) is started before its function is known: it waits
 * here, past Node's start and this runtime's imports, for one JSON line on stdin with the
 * function's environment and working directory, then goes on as a fresh spawn would.
 */
function awaitAssignment() {
  const chunks = [];
  const buffer = Buffer.alloc(65536);
  for (;;) {
    let read;
    try {
      read = fs.readSync(0, buffer, 0, buffer.length, null);
    } catch (err) {
      if (err.code === 'EAGAIN') continue;
      if (err.code === 'EOF') break;
      throw err;
    }
    if (read === 0) break;
    chunks.push(Buffer.from(buffer.subarray(0, read)));
    if (buffer.subarray(0, read).includes(10)) break;
  }
  if (!chunks.length) process.exit(0); // discarded unused
  const assignment = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  for (const name of Object.keys(env)) {
    if (!(name in assignment.env)) delete env[name];
  }
  Object.assign(env, assignment.env); // TZ takes effect on assignment
  process.chdir(assignment.cwd);
  Module._initPaths(); // NODE_PATH, which require() otherwise reads at start
}

async function main() {
  if (process.argv.includes('--standby')) awaitAssignment();
  let concurrent = null;
  if (env.AWS_LAMBDA_MAX_CONCURRENCY !== undefined) {
    concurrent = require('./concurrent.cjs');
    const workers = concurrent.workerCount(env);
    if (concurrent.isMainThread && workers > 1) {
      process.exit(await concurrent.runWorkers(workers, __filename));
    }
  }
  patchConsole();
  const client = new RuntimeClient(env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001');
  if (concurrent) installConcurrentHandlers();
  else installProcessHandlers(client);
  installAwsLambdaGlobal();
  let handler, meta;
  try {
    handler = await loadHandler(env.LAMBDA_TASK_ROOT || process.cwd(), env._HANDLER || '');
    meta = handlerMetadata(handler);
  } catch (err) {
    logError('Uncaught Exception', err);
    await client.postInitError(errorDocument(err)).catch(noop);
    process.exit(129);
  }
  if (concurrent) await serveConcurrent(client, handler, meta, concurrent);
  else serve(client, handler, meta);
}

main();

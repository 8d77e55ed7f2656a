/**
 * `console.*` as Lambda's Node.js runtime has it: one log line per call, written to fd 1.
 *
 * Text format (default): `<ISO time>\t<request id>\t<LEVEL>\t<util.format(...args)>\n`; with
 * `AWS_LAMBDA_LOG_FORMAT=JSON` one JSON object per line, as AWS writes it. `AWS_LAMBDA_LOG_LEVEL`
 * silences the levels below it. The request id is `undefined` until the first invocation.
 *
 * Lines are written synchronously (`fs.writeSync`), so every line of an invocation is in the pipe
 * before its response is posted. fd 1 may have been made non-blocking by user code touching
 * `process.stdout`; a full pipe (EAGAIN) is waited out.
 */

'use strict';

const fs = require('node:fs');
const util = require('node:util');
const { formatError, intoError } = require('./errors.cjs');

const LEVELS = { TRACE: 1, DEBUG: 2, INFO: 3, WARN: 4, ERROR: 5, FATAL: 6 };
const REQUEST_ID = Symbol.for('aws.lambda.runtime.requestId');
const TENANT_ID = Symbol.for('aws.lambda.runtime.tenantId');
const pause = new Int32Array(new SharedArrayBuffer(4));

// Read from the environment by patchConsole(), not at import: a spare runtime imports this
// module before it is given its function's environment (spares.py).
let jsonFormat = false;
let log = {};

function setRequestContext(requestId, tenantId) {
  globalThis[REQUEST_ID] = requestId;
  globalThis[TENANT_ID] = tenantId;
}

function writeOut(text) {
  const data = Buffer.from(text, 'utf8');
  let offset = 0;
  while (offset < data.length) {
    try {
      offset += fs.writeSync(1, data, offset);
    } catch (err) {
      if (err.code !== 'EAGAIN') return;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

function textLine(level, args) {
  return `${new Date().toISOString()}\t${globalThis[REQUEST_ID]}\t${level}\t${util.format(...args)}\n`;
}

function errorFields(error) {
  return {
    errorType: error?.constructor?.name ?? 'UnknownError',
    errorMessage: error.message,
    stackTrace: typeof error.stack === 'string' ? error.stack.split('\n') : error.stack,
  };
}

function jsonReplacer(_key, value) {
  return value instanceof Error ? Object.assign(errorFields(value), value) : value;
}

function jsonLine(level, args) {
  const record = { timestamp: new Date().toISOString(), level, requestId: globalThis[REQUEST_ID] };
  const tenantId = globalThis[TENANT_ID];
  if (tenantId !== undefined && tenantId !== null) record.tenantId = tenantId;
  if (args.length === 1) {
    record.message = args[0];
    try {
      return JSON.stringify(record, jsonReplacer) + '\n';
    } catch {
      record.message = util.format(args[0]);
      return JSON.stringify(record) + '\n';
    }
  }
  record.message = util.format(...args);
  const error = args.find((arg) => arg instanceof Error);
  if (error) {
    Object.assign(record, errorFields(error));
    if (!Array.isArray(record.stackTrace)) record.stackTrace = [];
  }
  return JSON.stringify(record) + '\n';
}

const noop = () => {};

function configure() {
  jsonFormat = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  const formatLine = jsonFormat ? jsonLine : textLine;
  const threshold = LEVELS[(process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] ?? LEVELS.TRACE;
  log = {};
  for (const level of Object.keys(LEVELS)) {
    log[level] = level === 'FATAL' || LEVELS[level] >= threshold
      ? (...args) => writeOut(formatLine(level, args)) : noop;
  }
}

/** Replace console's methods with Lambda's log writers (format and level from the environment). */
function patchConsole() {
  configure();
  console.trace = log.TRACE;
  console.debug = log.DEBUG;
  console.info = log.INFO;
  console.log = log.INFO;
  console.warn = log.WARN;
  console.error = log.ERROR;
  console.fatal = log.FATAL;
}

/** Log an error under a label ("Invoke Error", "Uncaught Exception"), as AWS's runtime does. */
function logError(label, error) {
  if (jsonFormat) log.ERROR(intoError(error));
  else log.ERROR(label, formatError(intoError(error)));
}

module.exports = { setRequestContext, writeOut, patchConsole, logError };

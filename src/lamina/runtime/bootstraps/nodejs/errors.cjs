/**
 * The runtime's error types and error documents, as AWS's Node.js runtime builds them.
 *
 * An error posted to the Runtime API is `{"errorType", "errorMessage", "trace"}` (AWS's Node.js
 * shape: `trace`, not `stackTrace`). A thrown value that is not an Error is posted with its
 * `typeof` as the type (`"string"`), as AWS does.
 */

'use strict';

const util = require('node:util');

const NODE_JS_EXIT_MESSAGE =
  'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly ' +
  'caused by a Promise that was never settled. For more information, see ' +
  'https://nodejs.org/docs/latest/api/process.html#exit-codes';

class ImportModuleError extends Error {}
class HandlerNotFound extends Error {}
class MalformedHandlerName extends Error {}
class UserCodeSyntaxError extends Error {}
class MalformedStreamingHandler extends Error {}
class InvalidStreamingOperation extends Error {}

class NodeJsExit extends Error {
  constructor() {
    super(NODE_JS_EXIT_MESSAGE);
  }
}

class UnhandledPromiseRejection extends Error {
  constructor(reason, promise) {
    super(reason === undefined ? undefined : safeString(reason));
    this.reason = reason;
    this.promise = promise;
  }
}

for (const type of [ImportModuleError, HandlerNotFound, MalformedHandlerName,
  UserCodeSyntaxError, MalformedStreamingHandler, InvalidStreamingOperation, NodeJsExit,
  UnhandledPromiseRejection]) {
  type.prototype.name = `Runtime.${type.name}`;
}

function safeString(value) {
  try {
    return String(value);
  } catch {
    return util.inspect(value);
  }
}

function isErrorLike(value) {
  return Boolean(value && value.name && value.message && value.stack &&
    typeof value.name === 'string' && typeof value.message === 'string' &&
    typeof value.stack === 'string');
}

function escapeDel(text) {
  return text?.replaceAll('\x7F', '%7F');
}

/** The document posted to `/error` or `/init/error` for a thrown or rejected value. */
function errorDocument(error) {
  try {
    if (util.types.isNativeError(error) || isErrorLike(error)) {
      return {
        errorType: escapeDel(error.name),
        errorMessage: escapeDel(error.message),
        trace: escapeDel(error.stack).split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: error.toString(), trace: [] };
  } catch {
    return {
      errorType: 'handled',
      errorMessage: 'callback called with Error argument, but there was a problem while ' +
        'retrieving one or more of its message, name, and stack',
    };
  }
}

function intoError(value) {
  if (value instanceof Error) return value;
  try {
    return new Error(value);
  } catch {
    return new Error(safeString(value));
  }
}

function withEnumerableProperties(_key, value) {
  if (!(value instanceof Error)) return value;
  const shown = Object.assign(
    { errorType: value.name, errorMessage: value.message, code: value.code }, value);
  if (typeof value.stack === 'string') shown.stack = value.stack.split('\n');
  return shown;
}

/** An error as the text log shows it after its label: a tab, then one line of JSON. */
function formatError(error) {
  try {
    return '\t' + JSON.stringify(error, withEnumerableProperties);
  } catch {
    return '\t' + JSON.stringify(errorDocument(error));
  }
}

module.exports = { ImportModuleError, HandlerNotFound, MalformedHandlerName, UserCodeSyntaxError, MalformedStreamingHandler, InvalidStreamingOperation, NodeJsExit, UnhandledPromiseRejection, errorDocument, intoError, formatError };

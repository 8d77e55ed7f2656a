/**
 * Loads the handler named by `_HANDLER`, as AWS's Node.js runtime does.
 *
 * `_HANDLER` is `[dir/]module.path.to.fn`: the module is the part of the last path segment before
 * its first dot. The module is looked for in LAMBDA_TASK_ROOT in AWS's order: the exact path
 * (an extensionless file, or a directory) with `require`; `<module>.js` with `require` unless the
 * nearest package.json says `"type": "module"`, in which case with `import()`; `<module>.mjs`
 * with `import()` (top-level await works); `<module>.cjs` with `require`; finally Node's own
 * resolution from the task root (node_modules). Failures carry AWS's error types.
 */

'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const {
  HandlerNotFound, ImportModuleError, MalformedHandlerName, MalformedStreamingHandler,
  UserCodeSyntaxError,
} = require('./errors.cjs');
const { HttpResponseStream } = require('./streaming.cjs');

const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';

/** `globalThis.awslambda`, which AWS provides unless AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA is set. */
function installAwsLambdaGlobal() {
  const optOut = process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (optOut === '1' || optOut === 'true') return;
  globalThis.awslambda = {
    streamifyResponse(handler, options) {
      handler[HANDLER_STREAMING] = STREAM_RESPONSE;
      if (typeof options?.highWaterMark === 'number') {
        handler[HANDLER_HIGHWATERMARK] = parseInt(options.highWaterMark, 10);
      }
      return handler;
    },
    HttpResponseStream,
  };
}

function splitHandler(handlerString) {
  if (handlerString.includes('..')) {
    throw new MalformedHandlerName(`'${handlerString}' is not a valid handler name. Use ` +
      'absolute paths when specifying root directories in handler names.');
  }
  const slash = handlerString.lastIndexOf('/');
  const moduleRoot = handlerString.slice(0, slash + 1);
  const match = /^([^.]*)\.(.*)$/.exec(handlerString.slice(slash + 1));
  if (!match) throw new MalformedHandlerName('Bad handler');
  return [moduleRoot, match[1], match[2]];
}

function requireIfExists(file) {
  return fs.existsSync(file) ? require(file) : undefined;
}

async function importIfExists(file) {
  return fs.existsSync(file) ? import(pathToFileURL(file).href) : undefined;
}

function folderIsModuleType(folder) {
  if (folder.endsWith('/node_modules')) return false;
  const packageJson = path.join(folder, 'package.json');
  if (fs.existsSync(packageJson)) {
    try {
      return JSON.parse(fs.readFileSync(packageJson, 'utf8'))?.type === 'module';
    } catch (err) {
      console.warn(`${packageJson} cannot be read, it will be ignored for ES module detection ` +
        'purposes.', err);
      return false;
    }
  }
  const parent = path.dirname(folder);
  return parent !== folder && folderIsModuleType(parent);
}

async function loadModule(taskRoot, moduleRoot, moduleName) {
  const base = path.resolve(taskRoot, moduleRoot, moduleName);
  const exact = requireIfExists(base);
  if (exact) return exact;
  const esmPackage = fs.existsSync(base + '.js') && folderIsModuleType(path.dirname(base));
  if (!esmPackage) {
    const loaded = requireIfExists(base + '.js');
    if (loaded) return loaded;
  }
  const loaded = (esmPackage && await importIfExists(base + '.js')) ||
    await importIfExists(base + '.mjs') || requireIfExists(base + '.cjs');
  if (loaded) return loaded;
  return require(require.resolve(moduleName, { paths: [taskRoot, moduleRoot] }));
}

async function loadUserModule(taskRoot, moduleRoot, moduleName) {
  try {
    return await loadModule(taskRoot, moduleRoot, moduleName);
  } catch (err) {
    if (err instanceof SyntaxError) throw new UserCodeSyntaxError(err);
    if (err?.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(err);
    throw err;
  }
}

/** The handler function of `_HANDLER`, or throws with AWS's error type. */
async function loadHandler(taskRoot, handlerString) {
  const [moduleRoot, moduleName, functionPath] = splitHandler(handlerString);
  const userModule = await loadUserModule(taskRoot, moduleRoot, moduleName);
  const handler = functionPath.split('.').reduce((value, key) => value && value[key], userModule);
  if (!handler) throw new HandlerNotFound(`${handlerString} is undefined or not exported`);
  if (typeof handler !== 'function') throw new HandlerNotFound(`${handlerString} is not a function`);
  return handler;
}

/** What the invocation loop needs to know about a handler. */
function handlerMetadata(handler) {
  const streaming = handler[HANDLER_STREAMING];
  if (streaming !== undefined && streaming !== null && streaming !== false &&
      streaming !== STREAM_RESPONSE) {
    throw new MalformedStreamingHandler('Only response streaming is supported.');
  }
  const highWaterMark = parseInt(handler[HANDLER_HIGHWATERMARK], 10);
  return {
    streaming: streaming === STREAM_RESPONSE,
    highWaterMark: Number.isNaN(highWaterMark) ? undefined : highWaterMark,
    isAsync: handler.constructor?.name === 'AsyncFunction',
  };
}

module.exports = { installAwsLambdaGlobal, loadHandler, handlerMetadata };

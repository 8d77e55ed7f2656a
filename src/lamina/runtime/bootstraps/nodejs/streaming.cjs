/**
 * Response streaming for handlers wrapped in `awslambda.streamifyResponse` (spec §5.3).
 *
 * The handler's `responseStream` is a Writable whose chunks go out as the body of a chunked
 * `/response` POST (see StreamingResponse in client.cjs). As in AWS's runtime: the content type
 * defaults to `application/octet-stream` and can be set until the first write; writes of values
 * other than strings and bytes are JSON-encoded; `HttpResponseStream.from` prefixes the body with
 * the HTTP-integration prelude (JSON metadata, then 8 NUL bytes).
 */

'use strict';

const { Writable } = require('node:stream');
const { InvalidStreamingOperation, errorDocument } = require('./errors.cjs');

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
const HTTP_INTEGRATION_CONTENT_TYPE = 'application/vnd.awslambda.http-integration-response';
const PRELUDE_DELIMITER = new Uint8Array(8);

function isBytes(chunk) {
  return typeof chunk === 'string' || Buffer.isBuffer(chunk) || chunk?.constructor === Uint8Array;
}

class ResponseStream extends Writable {
  constructor(transport, highWaterMark) {
    super(highWaterMark === undefined ? {} : { highWaterMark });
    this.transport = transport;
    this.contentType = DEFAULT_CONTENT_TYPE;
    this.writeCalled = false;
    this._onBeforeFirstWrite = undefined;
  }

  setContentType(contentType) {
    if (this.writeCalled) throw new InvalidStreamingOperation('Cannot set content-type, too late.');
    this.contentType = contentType;
  }

  beforeFirstWrite() {
    if (this.writeCalled) return;
    this.writeCalled = true;
    if (typeof this._onBeforeFirstWrite === 'function') {
      this._onBeforeFirstWrite((chunk) => super.write(chunk));
    }
  }

  write(chunk, encoding, callback) {
    if (!isBytes(chunk)) chunk = JSON.stringify(chunk);
    this.beforeFirstWrite();
    return super.write(chunk, encoding, callback);
  }

  end(chunk, encoding, callback) {
    if (typeof chunk === 'function') [chunk, callback] = [undefined, chunk];
    else if (typeof encoding === 'function') [encoding, callback] = [undefined, encoding];
    if (chunk !== undefined && chunk !== null) this.write(chunk, encoding);
    else this.beforeFirstWrite();
    return super.end(callback);
  }

  _write(chunk, _encoding, callback) {
    this.transport.writeChunk(this.contentType, chunk, callback);
  }

  _writev(entries, callback) {
    const chunks = entries.map((entry) => entry.chunk);
    this.transport.writeChunk(this.contentType, Buffer.concat(chunks), callback);
  }

  _final(callback) {
    this.transport.end(this.contentType, '', callback);
  }

  _destroy(err, callback) {
    if (err) this.transport.fail(this.contentType, errorDocument(err));
    else this.transport.abort();
    callback(err);
  }

  /** End the response with an error (sent as HTTP trailers); a no-op once it has ended. */
  fail(document) {
    this.transport.fail(this.contentType, document);
  }
}

class HttpResponseStream {
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType(HTTP_INTEGRATION_CONTENT_TYPE);
    const metadataPrelude = JSON.stringify(prelude);
    underlyingStream._onBeforeFirstWrite = (write) => {
      write(metadataPrelude);
      write(PRELUDE_DELIMITER);
    };
    return underlyingStream;
  }
}

module.exports = { ResponseStream, HttpResponseStream };

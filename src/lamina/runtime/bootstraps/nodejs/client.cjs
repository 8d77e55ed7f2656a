/**
 * A lean Runtime API client (spec §10): one keep-alive TCP connection (no-delay) and a minimal
 * HTTP/1.1 response parser, because every invocation crosses it twice.
 *
 * The parser reads a status line, headers and a Content-Length body (the engine always sends
 * one), and skips interim 1xx responses. `Connection: close` and a connection found dropped
 * are answered by reconnecting once. While no response is awaited the socket is unref'd, so it
 * never keeps the event loop alive: an empty event loop then means the function's own work is
 * done. An invocation's answer goes out with the next `next` in one write (pipelined), so the
 * runtime waits once per invocation instead of twice.
 *
 * A streamed response (spec §5.3) is a chunked POST on a connection of its own.
 */

'use strict';

const net = require('node:net');

const API = '/2018-06-01/runtime';
const ERROR_TYPE = 'Lambda-Runtime-Function-Error-Type';
const ERROR_BODY = 'Lambda-Runtime-Function-Error-Body';
const CONTROL_CHARS = /[\x00-\x1f\x7f]/g;
const READ_BUFFER = 65536;

function headerValue(value) {
  return String(value).replace(CONTROL_CHARS, '');
}

/**
 * The headers a runtime reads, by their lower-cased names; the others are skipped. An object of
 * one shape for every response: filling it is a store to a field it has (an object grown key by
 * key, each name a new string to intern, was a tenth of the runtime's time per invocation).
 */
class Headers {
  constructor() {
    this['content-length'] = undefined;
    this.connection = undefined;
    this['lambda-runtime-aws-request-id'] = undefined;
    this['lambda-runtime-deadline-ms'] = undefined;
    this['lambda-runtime-invoked-function-arn'] = undefined;
    this['lambda-runtime-invocation-id'] = undefined;
    this['lambda-runtime-trace-id'] = undefined;
    this['lambda-runtime-client-context'] = undefined;
    this['lambda-runtime-cognito-identity'] = undefined;
    this['lambda-runtime-aws-tenant-id'] = undefined;
  }
}

const KNOWN = new Map(Object.keys(new Headers()).map((name) => [name, name]));
// as the engine spells them (wire.py, Lambda's casing): found without lower-casing
const SPELLED = new Map(Object.keys(new Headers()).map((name) => [
  name.replace(/(^|-)([a-z])/g, (_, dash, letter) => dash + letter.toUpperCase()), name]));

/** The value of `text` if it is 1 to 15 decimal digits, else -1: read digit by digit in
 * JavaScript, where V8 calls into its runtime for `parseInt` or `Number` of a string (three
 * times per invocation). */
function digits(text) {
  if (text.length === 0 || text.length > 15) return -1;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/** `parseInt(text, 10)`. */
function decimal(text) {
  const value = digits(text);
  return value < 0 ? parseInt(text, 10) : value;
}

/**
 * A response's status line and headers (`text`, up to the blank line). `length` is the
 * Content-Length, `close` a `Connection: close`.
 */
function parseHead(text) {
  let lineEnd = text.indexOf('\r\n');
  if (lineEnd < 0) lineEnd = text.length;
  const space = text.indexOf(' ');
  const status = decimal(text.slice(space + 1, space + 4));
  const headers = new Headers();
  let pos = lineEnd + 2;
  while (pos < text.length) {
    let next = text.indexOf('\r\n', pos);
    if (next < 0) next = text.length;
    const colon = text.indexOf(':', pos);
    if (colon > pos && colon < next) {
      const name = text.slice(pos, colon);
      const key = SPELLED.get(name) ?? KNOWN.get(name.trim().toLowerCase());
      if (key !== undefined) headers[key] = text.slice(colon + 1, next).trim();
    }
    pos = next + 2;
  }
  const length = decimal(headers['content-length'] || '0');
  const close = (headers.connection || '').toLowerCase() === 'close';
  return { status, headers, length, close };
}

/** A response to a request sent: `callback(err, response)`; `data` is sent again once on a
 * new connection if this one drops before answering (`retry`). */
class Pending {
  constructor(callback, data, retry) {
    this.callback = callback;
    this.data = data;
    this.retry = retry;
  }
}

function settle(resolve, reject) {
  return (err, response) => (err ? reject(err) : resolve(response));
}

/**
 * One HTTP/1.1 connection. Requests may be pipelined: their responses come back in order, each
 * handed to the callback its request was sent with (`send`, `sendTwo`) or resolving the
 * promise it was given (`exchange`, `expectResponse`). A response is `{ status, headers, body }`
 * with the body decoded as UTF-8.
 *
 * Data is read with `onread` into one reusable buffer, bypassing the socket's Readable stream
 * (its push/emit machinery was the runtime's largest cost per invocation); a response is parsed
 * where it lies in that buffer, and only what is kept past a read (an unfinished head, a body
 * split across reads) is copied out of it.
 */
class Connection {
  constructor(host, port) {
    this.host = host;
    this.port = port;
    this.socket = null;
    this.waiting = []; // one Pending per request sent, oldest first
    this.rest = null; // the start of a head not yet complete (a copy)
    this.head = null;
    this.chunks = null; // a body's parts so far, when it spans reads
    this.received = 0;
  }

  get isOpen() {
    return this.socket !== null;
  }

  open() {
    const socket = net.connect({
      host: this.host,
      port: this.port,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER),
        callback: (length, buffer) => {
          this.onRead(socket, buffer, length);
        },
      },
    });
    socket.setNoDelay(true);
    socket.on('error', (err) => this.onClose(socket, err));
    socket.on('close', () => this.onClose(socket, null));
    this.socket = socket;
    this.rest = null;
    this.head = null;
  }

  close() {
    const socket = this.socket;
    if (socket) {
      this.onClose(socket, null);
      socket.destroy();
    }
  }

  expect(pending) {
    if (!this.socket) this.open();
    if (this.waiting.length === 0) this.socket.ref();
    this.waiting.push(pending);
  }

  /** Send a whole request; `callback(err, response)` when its response has come. */
  send(data, callback, retry = false) {
    this.expect(new Pending(callback, data, retry));
    this.socket.write(data);
  }

  /** Send two whole requests in one write, each with the callback for its response. */
  sendTwo(first, onFirst, second, onSecond, retry = false) {
    this.expect(new Pending(onFirst, first, retry));
    this.waiting.push(new Pending(onSecond, second, retry));
    this.socket.write(first + second);
  }

  /** A promise of the response to the next request written on this connection (`write`). */
  expectResponse() {
    return new Promise((resolve, reject) => this.expect(new Pending(settle(resolve, reject), null, false)));
  }

  write(data, callback) {
    if (this.socket) this.socket.write(data, callback);
    else if (callback) callback();
  }

  /** Send a whole request and wait for its response. */
  exchange(data, retry = false) {
    return new Promise((resolve, reject) => this.send(data, settle(resolve, reject), retry));
  }

  /** `buffer` up to `length` is this read's data, valid during this call only (it is reused). */
  onRead(socket, buffer, length) {
    let data = buffer;
    let end = length;
    if (this.rest !== null) {
      data = Buffer.concat([this.rest, buffer.subarray(0, length)]);
      end = data.length;
      this.rest = null;
    }
    let offset = 0;
    // the read as Latin-1 text (a character per byte), made once for the heads in it: a head
    // is found and parsed with V8's string builtins (Buffer#indexOf goes through Node's
    // JavaScript and C++ for each search: 4 % of a fresh runtime's samples)
    let text = null;
    for (;;) {
      let head = this.head;
      if (head === null) {
        if (offset >= end) return;
        if (text === null) text = data.toString('latin1', 0, end);
        const headEnd = text.indexOf('\r\n\r\n', offset);
        if (headEnd < 0) {
          this.rest = Buffer.from(data.subarray(offset, end));
          return;
        }
        head = parseHead(text.slice(offset, headEnd));
        offset = headEnd + 4;
        if (head.status < 200) continue; // interim (100 Continue): read on
        this.head = head;
        this.received = 0;
      }
      const want = head.length - this.received;
      const take = Math.min(want, end - offset);
      let body;
      if (take === want && this.chunks === null) {
        body = take === 0 ? '' : data.toString('utf8', offset, offset + take); // all in this read
      } else {
        if (this.chunks === null) this.chunks = [];
        if (take > 0) this.chunks.push(Buffer.from(data.subarray(offset, offset + take)));
        this.received += take;
        if (take < want) return;
        body = Buffer.concat(this.chunks, head.length).toString('utf8');
      }
      offset += take;
      this.finish(head, body);
      if (this.socket !== socket) return;
    }
  }

  finish(head, body) {
    this.head = null;
    this.chunks = null;
    const pending = this.waiting.shift();
    if (head.close) this.close();
    else if (this.waiting.length === 0) this.socket.unref();
    if (pending) pending.callback(null, { status: head.status, headers: head.headers, body });
  }

  /** The connection is gone: what it left unanswered is sent again once on a new one (`retry`),
   * in order, or fails. */
  onClose(socket, err) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.rest = null;
    this.head = null;
    this.chunks = null;
    const waiting = this.waiting;
    this.waiting = [];
    const failure = err || new Error('Runtime API closed the connection');
    for (const pending of waiting) {
      if (pending.retry) this.send(pending.data, pending.callback);
      else pending.callback(failure, null);
    }
  }
}

/** The `next` sent with an answer: its response, kept until the loop asks for it. */
class Prefetch {
  constructor() {
    this.done = false;
    this.err = null;
    this.response = null;
    this.callback = null;
  }
}

/** The Runtime API endpoints a runtime calls (spec §10.1). */
class RuntimeClient {
  constructor(address) {
    const colon = address.lastIndexOf(':');
    this.host = address.slice(0, colon).replace(/^\[|\]$/g, '');
    this.port = parseInt(address.slice(colon + 1), 10);
    this.address = address;
    this.connection = new Connection(this.host, this.port);
    this.nextRequest = `GET ${API}/invocation/next HTTP/1.1\r\nHost: ${address}\r\n\r\n`;
    this.prefetched = null; // a `next` sent with the last answer (answerThenNext)
  }

  /** One request; on a reused connection found dropped, sent again once on a new one. */
  request(data) {
    return this.connection.exchange(data, this.connection.isOpen);
  }

  /**
   * An invocation's answer and the runtime's next `next` in one write (HTTP/1.1 pipelining):
   * the engine takes them one after the other, as if sent apart, and the runtime is woken
   * once per invocation rather than twice. `callback(err, response)` has the answer's
   * response; the `next`'s is what `nextEvent` hands on.
   */
  answerThenNext(data, callback) {
    const prefetch = new Prefetch();
    this.prefetched = prefetch;
    const onNext = (err, response) => {
      if (prefetch.callback !== null) {
        prefetch.callback(err, response);
        return;
      }
      prefetch.done = true;
      prefetch.err = err;
      prefetch.response = response;
    };
    // a dropped connection fails both in order: each is sent again, in that order
    this.connection.sendTwo(data, callback, this.nextRequest, onNext, this.connection.isOpen);
  }

  /** The next event: `callback(err, response)`; the `next` sent with the last answer if any. */
  nextEvent(callback) {
    const prefetch = this.prefetched;
    if (prefetch === null) {
      this.connection.send(this.nextRequest, callback, this.connection.isOpen);
      return;
    }
    this.prefetched = null;
    if (prefetch.done) callback(prefetch.err, prefetch.response);
    else prefetch.callback = callback;
  }

  next() {
    return new Promise((resolve, reject) => this.nextEvent(settle(resolve, reject)));
  }

  post(path, body, headers = '') {
    return `POST ${path} HTTP/1.1\r\nHost: ${this.address}\r\n${headers}` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  }

  errorPost(path, document, headers = '') {
    const type = document.errorType === undefined ? '' : `${ERROR_TYPE}: ${headerValue(document.errorType)}\r\n`;
    return this.post(path, JSON.stringify(document), type + headers);
  }

  responsePost(requestId, body) {
    return this.post(`${API}/invocation/${encodeURIComponent(requestId)}/response`, body);
  }

  errorPostFor(requestId, document) {
    return this.errorPost(`${API}/invocation/${encodeURIComponent(requestId)}/error`, document);
  }

  /** The invocation's result, with the next `next` pipelined after it. */
  postResponse(requestId, body) {
    return new Promise((resolve, reject) =>
      this.answerThenNext(this.responsePost(requestId, body), settle(resolve, reject)));
  }

  /** Post an error on a connection of its own (the shared one may be busy), then close it. */
  postErrorAside(requestId, document) {
    const path = requestId === null ? `${API}/init/error`
      : `${API}/invocation/${encodeURIComponent(requestId)}/error`;
    const connection = new Connection(this.host, this.port);
    return connection.exchange(this.errorPost(path, document))
      .finally(() => connection.close());
  }

  postInitError(document) {
    return this.request(this.errorPost(`${API}/init/error`, document));
  }

  streamResponse(requestId) {
    return new StreamingResponse(this, `${API}/invocation/${encodeURIComponent(requestId)}/response`);
  }
}

/**
 * A response POSTed with chunked transfer encoding as the function writes it. The request head
 * goes out with the first chunk (so the content type can still be set until then); a failure
 * ends the body with the error trailers. `done` resolves with the engine's answer, or null.
 */
class StreamingResponse {
  constructor(client, path) {
    this.client = client;
    this.path = path;
    this.connection = new Connection(client.host, client.port);
    this.done = this.connection.expectResponse().catch(() => null)
      .finally(() => this.connection.close());
    this.headSent = false;
    this.finished = false;
  }

  sendHead(contentType) {
    this.headSent = true;
    this.connection.write(`POST ${this.path} HTTP/1.1\r\nHost: ${this.client.address}\r\n` +
      'Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n' +
      `Trailer: ${ERROR_TYPE}, ${ERROR_BODY}\r\nContent-Type: ${headerValue(contentType)}\r\n\r\n`);
  }

  writeChunk(contentType, data, callback) {
    if (this.finished || data.length === 0) {
      callback();
      return;
    }
    if (!this.headSent) this.sendHead(contentType);
    const socket = this.connection.socket;
    if (!socket) {
      callback();
      return;
    }
    socket.cork();
    socket.write(data.length.toString(16) + '\r\n');
    socket.write(data);
    socket.write('\r\n', () => callback());
    socket.uncork();
  }

  end(contentType, trailers = '', callback = undefined) {
    if (this.finished) {
      if (callback) callback();
      return;
    }
    this.finished = true;
    if (!this.headSent) this.sendHead(contentType);
    this.connection.write(`0\r\n${trailers}\r\n`, callback && (() => callback()));
  }

  /** Drop the connection before the body has ended (the engine sees a truncated request). */
  abort() {
    if (this.finished) return;
    this.finished = true;
    this.connection.close();
  }

  fail(contentType, document) {
    const body = Buffer.from(JSON.stringify(document)).toString('base64');
    this.end(contentType, `${ERROR_TYPE}: ${headerValue(document.errorType)}\r\n` +
      `${ERROR_BODY}: ${body}\r\n`);
  }
}

module.exports = { Connection, RuntimeClient, StreamingResponse, digits };

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

import net from 'node:net';

const API = '/2018-06-01/runtime';
const ERROR_TYPE = 'Lambda-Runtime-Function-Error-Type';
const ERROR_BODY = 'Lambda-Runtime-Function-Error-Body';
const CONTROL_CHARS = /[\x00-\x1f\x7f]/g;
const HEAD_END = Buffer.from('\r\n\r\n'); // a Buffer needle: indexOf needs no conversion
const READ_BUFFER = 65536;
const noop = () => {};

function headerValue(value) {
  return String(value).replace(CONTROL_CHARS, '');
}

function parseHead(text) {
  const lines = text.split('\r\n');
  const status = parseInt(lines[0].split(' ', 2)[1], 10);
  const headers = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status, headers };
}

/**
 * One HTTP/1.1 connection. Requests may be pipelined: their responses come back in order, each
 * resolving the promise its request was given.
 *
 * Data is read with `onread` into one reusable buffer, bypassing the socket's Readable stream
 * (its push/emit machinery was the runtime's largest cost per invocation); what is kept past a
 * read (an unfinished head, a body) is copied out of that buffer.
 */
export class Connection {
  constructor(host, port) {
    this.host = host;
    this.port = port;
    this.socket = null;
    this.waiting = []; // one { resolve, reject } per request sent, oldest first
    this.rest = null; // the start of a head not yet complete (a copy)
    this.head = null;
    this.chunks = [];
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
          this.onRead(buffer.subarray(0, length));
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

  /** A promise of the response to the next request sent on this connection. */
  expectResponse() {
    if (!this.socket) this.open();
    if (this.waiting.length === 0) this.socket.ref();
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
    });
  }

  write(data, callback) {
    if (this.socket) this.socket.write(data, callback);
    else if (callback) callback();
  }

  /** Send a whole request and wait for its response. */
  exchange(data) {
    const response = this.expectResponse();
    this.socket.write(data);
    return response;
  }

  /** Send two whole requests in one write; a promise of each one's response. */
  exchangeTwo(first, second) {
    const responses = [this.expectResponse(), this.expectResponse()];
    this.socket.write(first + second);
    return responses;
  }

  /** `view` is valid during this call only (the read buffer is reused). */
  onRead(view) {
    let data = view;
    if (this.rest !== null) {
      data = Buffer.concat([this.rest, view]);
      this.rest = null;
    }
    let offset = 0;
    for (;;) {
      if (this.head === null) {
        if (offset >= data.length) return;
        const end = data.indexOf(HEAD_END, offset);
        if (end < 0) {
          this.rest = Buffer.from(data.subarray(offset));
          return;
        }
        const head = parseHead(data.toString('latin1', offset, end));
        offset = end + 4;
        if (head.status < 200) continue; // interim (100 Continue): read on
        head.length = parseInt(head.headers['content-length'] || '0', 10);
        this.head = head;
        this.chunks = [];
        this.received = 0;
      }
      const take = Math.min(this.head.length - this.received, data.length - offset);
      if (take > 0) {
        this.chunks.push(Buffer.from(data.subarray(offset, offset + take)));
        this.received += take;
        offset += take;
      }
      if (this.received < this.head.length) return;
      this.finish();
      if (this.socket === null) return;
    }
  }

  finish() {
    const { status, headers, length } = this.head;
    const body = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, length);
    this.head = null;
    this.chunks = [];
    const pending = this.waiting.shift();
    if ((headers.connection || '').toLowerCase() === 'close') this.close();
    else if (this.waiting.length === 0) this.socket.unref();
    if (pending) pending.resolve({ status, headers, body });
  }

  onClose(socket, err) {
    if (socket !== this.socket) return;
    this.socket = null;
    this.rest = null;
    this.head = null;
    this.chunks = [];
    const waiting = this.waiting;
    this.waiting = [];
    for (const pending of waiting) {
      pending.reject(err || new Error('Runtime API closed the connection'));
    }
  }
}

/** The Runtime API endpoints a runtime calls (spec §10.1). */
export class RuntimeClient {
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
    const reused = this.connection.isOpen;
    const response = this.connection.exchange(data);
    return reused ? response.catch(() => this.connection.exchange(data)) : response;
  }

  /**
   * An invocation's answer and the runtime's next `next` in one write (HTTP/1.1 pipelining):
   * the engine takes them one after the other, as if sent apart, and the runtime is woken
   * once per invocation rather than twice. The `next` is what `next()` returns.
   */
  answerThenNext(data) {
    const reused = this.connection.isOpen;
    let [answered, next] = this.connection.exchangeTwo(data, this.nextRequest);
    if (reused) {
      // a dropped connection rejects both in order: each is sent again, in that order
      answered = answered.catch(() => this.connection.exchange(data));
      next = next.catch(() => this.connection.exchange(this.nextRequest));
    }
    next.catch(noop); // its failure is the loop's to see, when it asks for the event
    this.prefetched = next;
    return answered;
  }

  post(path, body, headers = '') {
    return `POST ${path} HTTP/1.1\r\nHost: ${this.address}\r\n${headers}` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  }

  errorPost(path, document, headers = '') {
    const type = document.errorType === undefined ? '' : `${ERROR_TYPE}: ${headerValue(document.errorType)}\r\n`;
    return this.post(path, JSON.stringify(document), type + headers);
  }

  next() {
    const prefetched = this.prefetched;
    if (prefetched === null) return this.request(this.nextRequest);
    this.prefetched = null;
    return prefetched;
  }

  /** The invocation's result, with the next `next` pipelined after it. */
  postResponse(requestId, body) {
    return this.answerThenNext(this.post(`${API}/invocation/${encodeURIComponent(requestId)}/response`, body));
  }

  /** The invocation's error, with the next `next` pipelined after it. */
  postError(requestId, document) {
    return this.answerThenNext(this.errorPost(`${API}/invocation/${encodeURIComponent(requestId)}/error`, document));
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
export class StreamingResponse {
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

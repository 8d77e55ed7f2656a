/**
 * A lean Runtime API client (spec §10): one keep-alive TCP connection (no-delay) and a minimal
 * HTTP/1.1 response parser, because every invocation crosses it twice.
 *
 * The parser reads a status line, headers and a Content-Length body (the engine always sends
 * one), and skips interim 1xx responses. `Connection: close` and a connection found dropped
 * are answered by reconnecting once. Between requests the socket is unref'd, so it never keeps
 * the event loop alive: an empty event loop then means the function's own work is done.
 *
 * A streamed response (spec §5.3) is a chunked POST on a connection of its own.
 */

import net from 'node:net';

const API = '/2018-06-01/runtime';
const ERROR_TYPE = 'Lambda-Runtime-Function-Error-Type';
const ERROR_BODY = 'Lambda-Runtime-Function-Error-Body';
const CONTROL_CHARS = /[\x00-\x1f\x7f]/g;

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

/** One HTTP/1.1 connection carrying one request at a time. */
export class Connection {
  constructor(host, port) {
    this.host = host;
    this.port = port;
    this.socket = null;
    this.pending = null;
    this.rest = null;
    this.head = null;
    this.chunks = [];
    this.received = 0;
  }

  get isOpen() {
    return this.socket !== null;
  }

  open() {
    const socket = net.connect({ host: this.host, port: this.port });
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this.onData(chunk));
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

  /** A promise of the next response on this connection. */
  expectResponse() {
    if (!this.socket) this.open();
    this.socket.ref();
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
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

  onData(chunk) {
    if (this.head === null) {
      const data = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) {
        this.rest = data;
        return;
      }
      this.rest = null;
      const head = parseHead(data.toString('latin1', 0, end));
      const body = data.subarray(end + 4);
      if (head.status < 200) {
        if (body.length) this.onData(body);
        return;
      }
      head.length = parseInt(head.headers['content-length'] || '0', 10);
      this.head = head;
      this.chunks = [];
      this.received = 0;
      chunk = body;
    }
    if (chunk.length) {
      this.chunks.push(chunk);
      this.received += chunk.length;
    }
    if (this.received >= this.head.length) this.finish();
  }

  finish() {
    const { status, headers, length } = this.head;
    let body = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    if (body.length > length) {
      this.rest = body.subarray(length);
      body = body.subarray(0, length);
    }
    this.head = null;
    this.chunks = [];
    const pending = this.pending;
    this.pending = null;
    if ((headers.connection || '').toLowerCase() === 'close') this.close();
    else this.socket.unref();
    if (pending) pending.resolve({ status, headers, body });
  }

  onClose(socket, err) {
    if (socket !== this.socket) return;
    this.socket = null;
    const pending = this.pending;
    this.pending = null;
    if (pending) pending.reject(err || new Error('Runtime API closed the connection'));
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
  }

  async request(data) {
    const reused = this.connection.isOpen;
    try {
      return await this.connection.exchange(data);
    } catch (err) {
      if (!reused) throw err;
      this.connection.close();
      return this.connection.exchange(data);
    }
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
    return this.request(this.nextRequest);
  }

  postResponse(requestId, body) {
    return this.request(this.post(`${API}/invocation/${encodeURIComponent(requestId)}/response`, body));
  }

  postError(requestId, document) {
    return this.request(this.errorPost(`${API}/invocation/${encodeURIComponent(requestId)}/error`, document));
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

import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { readBuffers, release, retain } from './buffer-pool.ts';

/**
 * HTTP/1.1 as a registry client needs it, over plain or TLS sockets that read into pooled buffers (buffer-pool.ts):
 * keep-alive connections per origin, bodies by Content-Length or chunked, redirects for GET and HEAD, streamed
 * request bodies written as they arrive, timeouts and cancellation. Response bodies are streams of chunks that
 * point into the pooled read buffers, so bytes go from one socket to another without being copied in between.
 */

export type ResponseHeaders = Record<string, string | string[] | undefined>;

/** Content flowing in: each chunk is lent until the next one is asked for (`retain` it to keep it longer). */
export interface ChunkStream extends AsyncIterable<Uint8Array> {
  /** Stops the stream early (the connection under it is closed); an error is what a pending read rejects with. */
  destroy(err?: Error): void;
}

/** A request body sent as it arrives: exactly `length` bytes, never replayed. */
export interface StreamedBody {
  length: number;
  chunks: AsyncIterable<Uint8Array>;
}

export interface HttpRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: Buffer | StreamedBody;
  signal?: AbortSignal;
}

export interface HttpResponse {
  statusCode: number;
  /** Lower-case names; a repeated header is an array. */
  headers: ResponseHeaders;
  body: ResponseBody;
}

/** A transport failure; `code` names it as Node's socket errors do (ECONNRESET, ...). */
export class HttpError extends Error {
  constructor(
    message: string,
    readonly code: 'HTTP_TIMEOUT' | 'HTTP_PROTOCOL' | 'HTTP_CLOSED' | 'HTTP_BODY_LENGTH' | 'HTTP_TOO_LARGE',
  ) {
    super(message);
  }
}

export interface HttpAgentOptions {
  connectTimeoutMs?: number;
  /** A request waiting this long for the server (headers or the next body bytes) fails. */
  timeoutMs?: number;
  /** Idle connections are closed after this long: servers drop idle connections too, without warning. */
  keepAliveMs?: number;
  maxRedirects?: number;
}

const redirects = new Set([301, 302, 303, 307, 308]);
/**
 * Body bytes queued ahead of the reader before the socket stops reading, and resumes. Enough to ride out a slow
 * moment on the other side of a copy without stalling the source: a link of 40 MiB/s and 20 ms holds 0.8 MB.
 */
const queueHigh = 4 << 20;
const queueLow = 1 << 20;
/** Bodies read whole (manifests, error answers, token responses) stay below this. */
const maxCollected = 16 << 20;
/** A body left unread is drained up to this many bytes to keep its connection; beyond, the connection is closed. */
const maxDrained = 256 << 10;

export class HttpAgent {
  private readonly idle = new Map<string, Connection[]>();
  private closed = false;
  readonly connectTimeoutMs: number;
  readonly timeoutMs: number;
  readonly keepAliveMs: number;
  private readonly maxRedirects: number;

  constructor(opts: HttpAgentOptions = {}) {
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.timeoutMs = opts.timeoutMs ?? 120_000;
    this.keepAliveMs = opts.keepAliveMs ?? 4_000;
    this.maxRedirects = opts.maxRedirects ?? 3;
  }

  /** Sends a request; GET and HEAD follow redirects (without credentials to another origin). */
  async request(req: HttpRequest): Promise<HttpResponse> {
    let { url, headers } = req;
    for (let hops = 0; ; hops++) {
      const res = await this.exchange({ ...req, url, headers });
      const location = header(res.headers, 'location');
      if (!redirects.has(res.statusCode) || !location || (req.method !== 'GET' && req.method !== 'HEAD') || hops >= this.maxRedirects) return res;
      await res.body.dump();
      const next = new URL(location, url);
      if (next.origin !== url.origin) headers = withoutCredentials(headers);
      url = next;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const list of this.idle.values()) for (const c of list.splice(0)) c.destroy();
  }

  private async exchange(req: HttpRequest): Promise<HttpResponse> {
    const replayable = req.body === undefined || Buffer.isBuffer(req.body);
    const reused = this.takeIdle(req.url.origin);
    if (reused) {
      try {
        return await reused.send(req);
      } catch (err) {
        // The server closed a kept-alive connection as we reused it: what we sent can go again on a new one.
        if (!replayable || !reused.closedUnanswered || req.signal?.aborted) throw err;
      }
    }
    return (await this.connect(req.url, req.signal)).send(req);
  }

  private takeIdle(origin: string): Connection | undefined {
    const list = this.idle.get(origin);
    while (list?.length) {
      const c = list.pop()!;
      if (c.usable) return c.unpark();
    }
    return undefined;
  }

  /** @internal A connection done with its exchange: kept for the next request to its origin. */
  park(c: Connection): void {
    if (this.closed) return c.destroy();
    let list = this.idle.get(c.origin);
    if (!list) this.idle.set(c.origin, (list = []));
    list.push(c);
  }

  /** @internal */
  forget(c: Connection): void {
    const list = this.idle.get(c.origin);
    const i = list?.indexOf(c) ?? -1;
    if (i >= 0) list!.splice(i, 1);
  }

  private connect(url: URL, signal?: AbortSignal): Promise<Connection> {
    signal?.throwIfAborted();
    const conn = new Connection(this, url.origin);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const secure = url.protocol === 'https:';
    const port = Number(url.port) || (secure ? 443 : 80);
    const reader = readBuffers.reader();
    const onread = {
      buffer: () => reader.room(),
      callback: (n: number, buf: Uint8Array) => {
        reader.filled(n);
        return conn.onRead(n, buf as Buffer);
      },
    };
    const socket = secure
      ? // tls passes onread on to its socket, though its options type does not list it
        tlsConnect({ host, port, servername: isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'], ...{ onread } })
      : netConnect({ host, port, onread, noDelay: true });
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => {
        cleanup();
        socket.destroy();
        reject(err);
      };
      socket.once('close', () => reader.close());
      const timer = setTimeout(() => fail(new HttpError(`connecting to ${url.host} timed out after ${this.connectTimeoutMs} ms`, 'HTTP_TIMEOUT')), this.connectTimeoutMs);
      const aborted = () => fail(signal!.reason as Error);
      const connected = () => {
        cleanup();
        conn.attach(socket);
        resolve(conn);
      };
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', aborted);
        socket.off('error', fail);
      };
      signal?.addEventListener('abort', aborted, { once: true });
      socket.once('error', fail);
      socket.once(secure ? 'secureConnect' : 'connect', connected);
    });
  }
}

/** One request and its response on a connection. */
interface Exchange {
  method: string;
  resolve(res: HttpResponse): void;
  reject(err: Error): void;
  answered: boolean;
  /** The whole request is on the wire: the connection can carry another once the response is read. */
  sent: boolean;
  body?: ResponseBody;
  signal?: AbortSignal;
  onAbort?: () => void;
}

type Framing = { kind: 'length'; left: number } | { kind: 'chunked'; state: 'size' | 'data' | 'crlf' | 'trailer'; left: number; line: string } | { kind: 'close' };

class Connection {
  private socket!: Socket;
  private ex?: Exchange;
  private head?: Buffer;
  private framing?: Framing;
  private keepAlive = true;
  private paused = false;
  private idleTimer?: NodeJS.Timeout;
  /** The connection closed before any byte of the answer arrived. */
  closedUnanswered = false;

  constructor(
    private readonly agent: HttpAgent,
    readonly origin: string,
  ) {}

  get usable(): boolean {
    return !this.socket.destroyed && this.keepAlive;
  }

  attach(socket: Socket): void {
    this.socket = socket;
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.onClose());
    socket.on('timeout', () => this.fail(new HttpError(`no answer from ${this.origin} for ${this.agent.timeoutMs / 1000} s`, 'HTTP_TIMEOUT')));
  }

  unpark(): this {
    clearTimeout(this.idleTimer);
    return this;
  }

  destroy(err?: Error): void {
    clearTimeout(this.idleTimer);
    this.agent.forget(this);
    this.socket.destroy(err);
  }

  send(req: HttpRequest): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      const ex: Exchange = { method: req.method, resolve, reject, answered: false, sent: false, signal: req.signal };
      this.ex = ex;
      this.closedUnanswered = false;
      if (req.signal) {
        if (req.signal.aborted) return this.fail(req.signal.reason as Error);
        ex.onAbort = () => this.fail(req.signal!.reason as Error);
        req.signal.addEventListener('abort', ex.onAbort, { once: true });
      }
      this.socket.setTimeout(this.agent.timeoutMs);
      try {
        const head = requestHead(req);
        if (req.body === undefined || Buffer.isBuffer(req.body)) {
          this.socket.cork();
          this.socket.write(head, 'latin1');
          if (req.body?.length) this.socket.write(req.body);
          this.socket.uncork();
          ex.sent = true;
        } else {
          this.socket.write(head, 'latin1');
          // Streams while the answer may already arrive; a failed stream reports through fail(), not a rejection.
          void this.stream(req.body, ex);
        }
      } catch (err) {
        this.fail(err as Error);
      }
    });
  }

  /** Writes a streamed body; each chunk is held until the socket has written it. */
  private async stream(body: StreamedBody, ex: Exchange): Promise<void> {
    const chunks = body.chunks[Symbol.asyncIterator]();
    let sent = 0;
    try {
      for (;;) {
        const next = await chunks.next();
        // An answer before the whole body (a refusal) or a failure ends the upload.
        if (next.done || this.ex !== ex || ex.answered || this.socket.destroyed) break;
        const chunk = next.value;
        sent += chunk.length;
        if (sent > body.length) throw new HttpError(`the body is longer than the ${body.length} bytes it declared`, 'HTTP_BODY_LENGTH');
        retain(chunk);
        if (!this.socket.write(chunk, () => release(chunk))) await this.drained();
      }
      if (this.ex !== ex || ex.answered || this.socket.destroyed) return void chunks.return?.();
      if (sent !== body.length) throw new HttpError(`the body ended after ${sent} of the ${body.length} bytes it declared`, 'HTTP_BODY_LENGTH');
      ex.sent = true;
    } catch (err) {
      // Cutting the connection short of the declared length is what keeps the server from committing anything.
      if (this.ex === ex) this.fail(err as Error);
      // Only tells the body's source to let go of its resources: nothing waits on it.
      void chunks.return?.();
    }
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Bytes read into a pooled buffer: parsed, the body's share queued without copying. Returns false to pause. */
  onRead(n: number, buf: Buffer): boolean {
    try {
      this.consume(buf.subarray(0, n));
    } catch (err) {
      this.fail(err as Error);
    } finally {
      release(buf);
    }
    return !this.paused;
  }

  private consume(data: Buffer): void {
    let at = 0;
    while (at < data.length) {
      const ex = this.ex;
      if (!ex || (ex.answered && !this.framing)) throw new HttpError(`${this.origin} sent bytes nobody asked for`, 'HTTP_PROTOCOL');
      if (!ex.answered) {
        const before = this.head?.length ?? 0;
        const joined = this.head ? Buffer.concat([this.head, data.subarray(at)]) : data.subarray(at);
        const end = joined.indexOf('\r\n\r\n', Math.max(0, before - 3));
        if (end < 0) {
          if (joined.length > 64 << 10) throw new HttpError(`${this.origin} sent more than 64 KiB of headers`, 'HTTP_PROTOCOL');
          this.head = Buffer.from(joined); // out of the pooled buffer, which is about to be reused
          return;
        }
        this.head = undefined;
        at += end + 4 - before;
        this.answer(ex, joined.toString('latin1', 0, end));
      } else {
        at = this.consumeBody(data, at);
      }
    }
  }

  private answer(ex: Exchange, head: string): void {
    const lines = head.split('\r\n');
    const status = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0]);
    if (!status) throw new HttpError(`${this.origin} answered with something other than HTTP/1.x: ${lines[0].slice(0, 80)}`, 'HTTP_PROTOCOL');
    const statusCode = Number(status[2]);
    if (statusCode >= 100 && statusCode < 200) return; // 100 Continue and the like: the real answer follows
    const headers: ResponseHeaders = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      const prior = headers[name];
      headers[name] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : [prior, value];
    }
    const connection = header(headers, 'connection')?.toLowerCase();
    this.keepAlive = status[1] === '1' ? connection !== 'close' : connection === 'keep-alive';
    const encoding = header(headers, 'transfer-encoding')?.toLowerCase();
    const length = header(headers, 'content-length');
    if (ex.method === 'HEAD' || statusCode === 204 || statusCode === 304) this.framing = { kind: 'length', left: 0 };
    else if (encoding && encoding !== 'identity') this.framing = { kind: 'chunked', state: 'size', left: 0, line: '' };
    else if (length !== undefined && /^\d+$/.test(length)) this.framing = { kind: 'length', left: Number(length) };
    else {
      this.framing = { kind: 'close' };
      this.keepAlive = false;
    }
    if (encoding && encoding !== 'identity' && !encoding.endsWith('chunked')) throw new HttpError(`${this.origin} sent a body encoded as ${encoding}`, 'HTTP_PROTOCOL');
    // An answer before the whole request went out (a refusal mid-upload) leaves the connection out of step.
    if (!ex.sent) this.keepAlive = false;
    ex.answered = true;
    ex.body = new ResponseBody(this);
    ex.resolve({ statusCode, headers, body: ex.body });
    if (this.framing.kind === 'length' && this.framing.left === 0) this.finish(ex);
  }

  private consumeBody(data: Buffer, at: number): number {
    const ex = this.ex!;
    const f = this.framing!;
    if (f.kind === 'close') {
      ex.body!.push(data.subarray(at));
      return data.length;
    }
    if (f.kind === 'length') {
      const take = Math.min(f.left, data.length - at);
      ex.body!.push(data.subarray(at, at + take));
      f.left -= take;
      if (f.left === 0) this.finish(ex);
      return at + take;
    }
    // chunked: size line, data, CRLF, ..., a zero size, trailers up to an empty line
    if (f.state === 'data') {
      const take = Math.min(f.left, data.length - at);
      ex.body!.push(data.subarray(at, at + take));
      f.left -= take;
      if (f.left === 0) [f.state, f.left] = ['crlf', 2];
      return at + take;
    }
    if (f.state === 'crlf') {
      const take = Math.min(f.left, data.length - at);
      f.left -= take;
      if (f.left === 0) f.state = 'size';
      return at + take;
    }
    const eol = data.indexOf(10, at);
    f.line += data.toString('latin1', at, eol < 0 ? data.length : eol + 1);
    if (f.line.length > 4096) throw new HttpError(`${this.origin} sent a malformed chunked body`, 'HTTP_PROTOCOL');
    if (eol < 0) return data.length;
    const line = f.line.trim();
    f.line = '';
    if (f.state === 'trailer') {
      if (line === '') this.finish(ex);
      return eol + 1;
    }
    const size = parseInt(line.split(';')[0], 16);
    if (!Number.isFinite(size) || !/^[0-9a-fA-F]/.test(line)) throw new HttpError(`${this.origin} sent a malformed chunk size`, 'HTTP_PROTOCOL');
    if (size === 0) f.state = 'trailer';
    else [f.state, f.left] = ['data', size];
    return eol + 1;
  }

  /** The whole answer arrived. */
  private finish(ex: Exchange): void {
    this.framing = undefined;
    this.ex = undefined;
    ex.signal?.removeEventListener('abort', ex.onAbort!);
    ex.body!.end();
    this.socket.setTimeout(0);
    this.resume();
    if (!ex.sent || !this.keepAlive) return this.destroy();
    this.idleTimer = setTimeout(() => this.destroy(), this.agent.keepAliveMs);
    this.idleTimer.unref();
    this.agent.park(this);
  }

  /** The reader fell behind: stop reading (and stop the clock: the wait is ours, not the server's). */
  pause(): void {
    if (this.paused || this.socket.destroyed) return;
    this.paused = true;
    this.socket.setTimeout(0);
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.ex) this.socket.setTimeout(this.agent.timeoutMs);
    this.socket.resume();
  }

  private fail(err: Error): void {
    const ex = this.ex;
    const code = (err as { code?: string }).code;
    if (ex && !ex.answered && !this.head && (code === 'ECONNRESET' || code === 'EPIPE' || code === 'HTTP_CLOSED')) this.closedUnanswered = true;
    this.ex = undefined;
    this.framing = undefined;
    this.destroy();
    if (!ex) return;
    ex.signal?.removeEventListener('abort', ex.onAbort!);
    if (!ex.answered) ex.reject(err);
    else ex.body!.fail(err);
  }

  private onClose(): void {
    this.agent.forget(this);
    clearTimeout(this.idleTimer);
    const ex = this.ex;
    if (!ex) return;
    if (ex.answered && this.framing?.kind === 'close') return this.finish(ex);
    this.fail(new HttpError(`${this.origin} closed the connection ${ex.answered ? 'in the middle of the answer' : 'before answering'}`, 'HTTP_CLOSED'));
  }
}

/** A response body as it arrives; iterate it once, or read it whole with bytes(), text() or json(). */
export class ResponseBody implements ChunkStream, AsyncIterator<Uint8Array> {
  private readonly queue: Buffer[] = [];
  private queued = 0;
  private lent?: Buffer;
  private ended = false;
  private error?: Error;
  private wake?: () => void;

  constructor(private readonly conn: Connection) {}

  /** @internal */
  push(chunk: Buffer): void {
    if (chunk.length === 0 || this.error) return;
    retain(chunk);
    this.queue.push(chunk);
    this.queued += chunk.length;
    if (this.queued >= queueHigh) this.conn.pause();
    this.wake?.();
  }

  /** @internal */
  end(): void {
    this.ended = true;
    this.wake?.();
  }

  /** @internal */
  fail(err: Error): void {
    if (this.ended) return;
    this.error ??= err;
    this.drop();
    this.wake?.();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<Uint8Array>> {
    if (this.lent) release(this.lent);
    this.lent = undefined;
    while (this.queue.length === 0 && !this.ended && !this.error) await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = undefined;
    if (this.error) throw this.error;
    const chunk = this.queue.shift();
    if (!chunk) return { done: true, value: undefined };
    this.queued -= chunk.length;
    // Once the body has ended its connection may carry another exchange, whose reading is not ours to resume.
    if (!this.ended && this.queued <= queueLow) this.conn.resume();
    this.lent = chunk;
    return { done: false, value: chunk };
  }

  async return(): Promise<IteratorResult<Uint8Array>> {
    this.destroy();
    return { done: true, value: undefined };
  }

  destroy(err?: Error): void {
    if (!this.ended) this.conn.destroy();
    this.fail(err ?? new HttpError('the body was abandoned', 'HTTP_CLOSED'));
    this.ended = true;
  }

  /** Reads and discards the rest; a long rest closes the connection instead. */
  async dump(): Promise<void> {
    let drained = 0;
    for await (const chunk of this) {
      drained += chunk.length;
      if (drained > maxDrained) return this.destroy();
    }
  }

  async bytes(): Promise<Buffer> {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of this) {
      size += chunk.length;
      if (size > maxCollected) {
        this.destroy();
        throw new HttpError(`a body larger than ${maxCollected >> 20} MiB where a small one was expected`, 'HTTP_TOO_LARGE');
      }
      parts.push(Buffer.from(chunk));
    }
    return Buffer.concat(parts);
  }

  async text(): Promise<string> {
    return (await this.bytes()).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  private drop(): void {
    if (this.lent) release(this.lent);
    this.lent = undefined;
    for (const chunk of this.queue.splice(0)) release(chunk);
    this.queued = 0;
  }
}

function requestHead(req: HttpRequest): string {
  let head = `${req.method} ${req.url.pathname}${req.url.search} HTTP/1.1\r\nhost: ${req.url.host}\r\n`;
  const headers: Record<string, string> = { ...req.headers };
  const length = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body.length : req.body.length;
  if (length !== undefined) headers['content-length'] = String(length);
  else if (req.method === 'POST' || req.method === 'PUT' || req.method === 'PATCH') headers['content-length'] = '0';
  for (const [name, value] of Object.entries(headers)) {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new HttpError(`header ${name} contains a line break`, 'HTTP_PROTOCOL');
    head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

export function header(headers: ResponseHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  const { authorization: _, cookie: __, ...rest } = headers;
  return rest;
}

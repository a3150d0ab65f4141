import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Transform } from 'node:stream';

export interface RegistryProxy {
  url: string;
  /** Request body bytes of blob uploads that passed through: what the copier actually sent to the target. */
  uploadedBytes: number;
  /** Body bytes of blob downloads that passed through: what readers pulled from this registry. */
  downloadedBytes: number;
  /** TCP connections clients opened to the proxy: what a client that reuses its connections keeps at one. */
  connections: number;
  /** Added to every request before it is passed on (a distant registry); may be changed while the proxy runs. */
  delayMs: number;
  close(): Promise<void>;
}

const isBlobUpload = (req: IncomingMessage) => (req.method === 'PUT' || req.method === 'PATCH') && /\/blobs\/uploads\//.test(req.url ?? '');
const isBlobDownload = (req: IncomingMessage) => req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');

/** Passes bytes through, counting them, and flips one byte in the middle of the first chunk when asked. */
function tamper(corrupt: boolean, count: (n: number) => void): Transform {
  let flipped = !corrupt;
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      count(chunk.length);
      if (!flipped && chunk.length > 0) {
        chunk = Buffer.from(chunk);
        chunk[Math.floor(chunk.length / 2)] ^= 0xff;
        flipped = true;
      }
      done(null, chunk);
    },
  });
}

/** Delays each chunk so that the stream averages `bytesPerSecond`. */
function pace(bytesPerSecond: number): Transform {
  const started = Date.now();
  let sent = 0;
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      sent += chunk.length;
      setTimeout(() => done(null, chunk), Math.max(0, started + (sent / bytesPerSecond) * 1000 - Date.now()));
    },
  });
}

/**
 * A plain HTTP proxy in front of a registry. It keeps the Host header, so the registry's Location headers point
 * back at the proxy. It counts uploaded blob bytes and, with `corrupt`, flips one byte of every blob upload or
 * download on the way, as a faulty link would.
 */
export async function startRegistryProxy(
  targetUrl: string,
  opts: {
    corrupt?: 'uploads' | 'downloads';
    /** only downloads of this blob */
    onlyDigest?: string;
    /** answer the first requests with this status and headers instead of passing them on */
    refuseFirst?: { requests: number; status: number; headers?: Record<string, string> };
    /** a slow link: blob downloads are paced to this rate */
    downloadBytesPerSecond?: number;
    /** answer requests a rule matches (its first `times` of them; all without it) with its status and error code */
    refuseWhen?: { match: (method: string, path: string) => boolean; times?: number; status: number; code: string }[];
    /** a distant registry: every request waits this long before it is passed on */
    delayMs?: number;
  } = {},
): Promise<RegistryProxy> {
  const target = new URL(targetUrl);
  const state = { uploadedBytes: 0, downloadedBytes: 0, refused: 0, connections: 0, delayMs: opts.delayMs ?? 0 };
  const refusedBy = new Map<object, number>();
  const refuse = (req: IncomingMessage, res: ServerResponse, status: number, code: string, headers?: Record<string, string>) => {
    req.resume();
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ errors: [{ code, message: 'refused by the test proxy' }] }));
  };
  const server: Server = createServer((req, res) => (state.delayMs > 0 ? setTimeout(() => forward(req, res), state.delayMs) : forward(req, res)));
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    if (opts.refuseFirst && state.refused < opts.refuseFirst.requests) {
      state.refused++;
      return refuse(req, res, opts.refuseFirst.status, 'TOOMANYREQUESTS', opts.refuseFirst.headers);
    }
    const rule = opts.refuseWhen?.find((r) => r.match(req.method ?? '', req.url ?? '') && (r.times === undefined || (refusedBy.get(r) ?? 0) < r.times));
    if (rule) {
      refusedBy.set(rule, (refusedBy.get(rule) ?? 0) + 1);
      return refuse(req, res, rule.status, rule.code);
    }
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (isBlobDownload(req)) {
        const chosen = opts.corrupt === 'downloads' && (!opts.onlyDigest || req.url!.endsWith(opts.onlyDigest));
        const tampered = up.pipe(tamper(chosen, (n) => (state.downloadedBytes += n)));
        (opts.downloadBytesPerSecond ? tampered.pipe(pace(opts.downloadBytesPerSecond)) : tampered).pipe(res);
      } else {
        up.pipe(res);
      }
    });
    upstream.on('error', () => res.destroy());
    req.on('error', () => upstream.destroy());
    if (!isBlobUpload(req)) {
      req.pipe(upstream);
      return;
    }
    req.pipe(tamper(opts.corrupt === 'uploads', (n) => (state.uploadedBytes += n))).pipe(upstream);
  };
  server.on('connection', () => state.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    get uploadedBytes() {
      return state.uploadedBytes;
    },
    get downloadedBytes() {
      return state.downloadedBytes;
    },
    get connections() {
      return state.connections;
    },
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms: number) {
      state.delayMs = ms;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

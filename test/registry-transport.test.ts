// berth's own HTTP/1.1 transport (activities/registry/http.ts) against a real registry, with what real networks
// put in between: blob downloads redirected to storage on another origin, bodies sent chunked in odd pieces, a
// kept-alive connection the server dropped, a server refusing an upload in the middle of its body, a server that
// stops answering.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { copyImage } from '../activities/registry/copy-image.ts';
import { RegistryError } from '../activities/registry/errors.ts';
import { HttpAgent, HttpError } from '../activities/registry/http.ts';
import { registryClient, startedRegistry, tempDir, type TestRegistry } from '../testbed/berth.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';

let source: TestRegistry;
let target: TestRegistry;
let image: BuiltImage;
const servers: Server[] = [];
const basic = (r: TestRegistry) => `Basic ${Buffer.from(`${r.username}:${r.password}`).toString('base64')}`;

/** A server in front of a registry; `handle` answers a request itself or returns false to pass it on. */
async function front(registry: TestRegistry, handle: (req: IncomingMessage, res: ServerResponse, pass: () => void) => boolean | void): Promise<string> {
  const upstream = new URL(registry.url);
  const server = createServer((req, res) => {
    const pass = () => {
      const up = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    if (!handle(req, res, pass)) pass();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

const isBlobGet = (req: IncomingMessage) => req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');

before(async () => {
  [source, target] = await Promise.all([startedRegistry('transport-source'), startedRegistry('transport-target')]);
  image = await buildOciLayout(tempDir('transport'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 3 << 20 }, { size: 300 << 10, gzip: true }] }]);
  await pushWithSkopeo(image, source, 'lib/app');
});

after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  await Promise.all([source?.stop(), target?.stop()]);
});

async function copyThrough(sourceUrl: string, repository: string, opts: { targetUrl?: string; chunkSize?: number } = {}) {
  const [from, to] = [registryClient(source, { url: sourceUrl }), registryClient(target, { url: opts.targetUrl, chunkSize: opts.chunkSize })];
  try {
    return await copyImage({ source: from, sourceRepository: 'lib/app', target: to, targetRepository: repository, reference: '1.0', concurrency: 2 });
  } finally {
    await Promise.all([from.close(), to.close()]);
  }
}

test('blob downloads redirected to storage on another origin are followed, without the registry credentials', async () => {
  // Storage as S3 serves it: by a signed URL, no Authorization expected; it reads from the registry itself.
  const seenByStorage: (string | undefined)[] = [];
  const storage = await front(source, (req, _res, pass) => {
    seenByStorage.push(req.headers.authorization);
    req.headers.authorization = basic(source);
    req.url = req.url!.replace(/\?.*$/, '');
    pass();
    return true;
  });
  const registry = await front(source, (req, res) => {
    if (!isBlobGet(req) || !req.headers.authorization) return false;
    res.writeHead(307, { location: `${storage}${req.url}?signature=abc` }).end();
    return true;
  });
  const result = await copyThrough(registry, 'lib/redirected');
  assert.equal(result.bytesCopied, image.blobBytes);
  assert.equal(await digestWithSkopeo(target, 'lib/redirected:1.0'), image.digest);
  assert.equal(seenByStorage.length, 3, 'every blob came from storage: two layers and the config');
  assert.deepEqual(seenByStorage, [undefined, undefined, undefined], 'no credentials went to another origin');
});

test('answers in chunked transfer encoding, cut into pieces of odd sizes, arrive whole', async () => {
  const upstream = new URL(source.url);
  const registry = await front(source, (req, res) => {
    const up = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      const { 'content-length': _, ...headers } = answer.headers;
      res.writeHead(answer.statusCode ?? 502, headers); // no length: Node sends it chunked
      let size = 1;
      answer.on('data', (data: Buffer) => {
        for (let at = 0; at < data.length; at += size, size = (size * 7 + 3) % 9000 || 1) res.write(data.subarray(at, at + size));
      });
      answer.on('end', () => res.end());
    });
    req.pipe(up);
    return true;
  });
  const result = await copyThrough(registry, 'lib/chunked');
  assert.equal(result.bytesCopied, image.blobBytes);
  assert.equal(await digestWithSkopeo(target, 'lib/chunked:1.0'), image.digest);
});

test('a kept-alive connection the server dropped is replaced for a request that can be sent again', async () => {
  // The server closes a connection when a second request arrives on it, before answering: what a client sees when
  // it reuses a connection the server has just timed out.
  const requestsOn = new Map<Socket, number>();
  let dropped = 0;
  const registry = await front(source, (req) => {
    const n = (requestsOn.get(req.socket) ?? 0) + 1;
    requestsOn.set(req.socket, n);
    if (n < 2) return false;
    dropped++;
    req.socket.destroy();
    return true;
  });
  const result = await copyThrough(registry, 'lib/reconnected');
  assert.ok(dropped > 0, 'the client did reuse connections');
  assert.equal(result.bytesCopied, image.blobBytes);
  assert.equal(await digestWithSkopeo(target, 'lib/reconnected:1.0'), image.digest);
});

test("a refusal in the middle of an upload fails it with the registry's answer, and nothing is committed", async () => {
  const registry = await front(target, (req) => {
    if (!(req.method === 'PUT' || req.method === 'PATCH') || !/\/blobs\/uploads\//.test(req.url ?? '') || Number(req.headers['content-length']) < 1 << 20) return false;
    // Read some of the body, then answer as a proxy with a body size limit does (nginx): the answer with
    // `connection: close`, then a lingering close, reading what the client still sends for a while. Closing at
    // once would reset the connection under the client's unsent bytes, and the kernel would drop the answer.
    req.once('data', () => {
      const answer = JSON.stringify({ errors: [{ code: 'SIZE_LIMIT', message: 'request body too large' }] });
      req.socket.write(`HTTP/1.1 413 Request Entity Too Large\r\ncontent-type: application/json\r\ncontent-length: ${answer.length}\r\nconnection: close\r\n\r\n${answer}`);
      req.resume();
      setTimeout(() => req.socket.destroy(), 5_000).unref();
    });
    return true;
  });
  const err = await copyThrough(source.url, 'lib/refused', { targetUrl: registry }).then(
    () => assert.fail('the copy should fail'),
    (e) => e,
  );
  assert.ok(err instanceof RegistryError, String(err));
  assert.equal(err.type, 'RegistryRejected');
  assert.match(err.message, /HTTP 413 SIZE_LIMIT: request body too large/);
  await assert.rejects(digestWithSkopeo(target, 'lib/refused:1.0'), /manifest unknown/);
});

test('a server that stops answering, before its headers or in the middle of a body, fails the request in time', async () => {
  const upstream = new URL(source.url);
  const manifest = JSON.parse(readFileSync(join(image.layoutDir, 'blobs', 'sha256', image.manifests[0].digest.slice('sha256:'.length)), 'utf8'));
  const blob = (manifest.layers as { digest: string; size: number }[]).find((l) => l.size > 1 << 20)!;
  // Headers never come for /silent; for a blob, the first part of the body comes, then nothing.
  const registry = await front(source, (req, res) => {
    if (req.url === '/silent') return true;
    if (!isBlobGet(req)) return false;
    const up = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, authorization: basic(source) } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.once('data', (data: Buffer) => {
        res.write(data);
        answer.destroy();
      });
    });
    up.end();
    return true;
  });
  const http = new HttpAgent({ timeoutMs: 1_000 });
  try {
    const started = performance.now();
    await assert.rejects(http.request({ method: 'GET', url: new URL(`${registry}/silent`), headers: {} }), (err) => err instanceof HttpError && err.code === 'HTTP_TIMEOUT');
    const res = await http.request({ method: 'GET', url: new URL(`${registry}/v2/lib/app/blobs/${blob.digest}`), headers: {} });
    assert.equal(res.statusCode, 200);
    await assert.rejects(res.body.bytes(), (err) => err instanceof HttpError && err.code === 'HTTP_TIMEOUT');
    assert.ok(performance.now() - started < 30_000, "both gave up after about their timeout, not the server's");
  } finally {
    await http.close();
  }
});

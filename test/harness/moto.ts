import { existsSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, spawnManaged, waitUntil } from '../../embedded/processes.ts';
import { tempDir } from './berth.ts';

// scripts/setup.sh installs moto[server] into a venv and links it here.
const motoServer = fileURLToPath(new URL('../../.tools/moto/bin/moto_server', import.meta.url));

export interface Moto {
  /** The EC2 endpoint (every AWS service, in fact) on a loopback port. */
  url: string;
  stop(): Promise<void>;
}

/** A moto_server of the test file's own: its state is in memory and dies with it. */
export async function startMoto(): Promise<Moto> {
  if (!existsSync(motoServer)) throw new Error(`${motoServer} is missing: run bash scripts/setup.sh`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = spawnManaged('moto_server', motoServer, ['-H', '127.0.0.1', '-p', String(port)], join(tempDir('moto'), 'moto.log'));
  await waitUntil('moto_server', async () => (await fetch(`${url}/moto-api/`)).ok, { timeoutMs: 30_000, process: proc });
  return { url, stop: () => proc.stop() };
}

export interface ThrottlingProxy {
  url: string;
  /** Requests answered with RequestLimitExceeded so far. */
  readonly throttled: number;
  /** Requests passed on to the endpoint. */
  readonly passed: number;
  close(): Promise<void>;
}

/**
 * Stands in front of an EC2 endpoint and answers the first `requests` calls as EC2 does when it throttles an
 * account (503, RequestLimitExceeded in EC2's error XML); the rest pass through. moto never throttles by itself.
 */
export async function startThrottlingProxy(targetUrl: string, requests: number): Promise<ThrottlingProxy> {
  const target = new URL(targetUrl);
  const counts = { throttled: 0, passed: 0 };
  const server = createServer((req, res) => {
    if (counts.throttled < requests) {
      counts.throttled++;
      req.resume();
      res.writeHead(503, { 'content-type': 'text/xml;charset=UTF-8' });
      res.end(
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code>' +
          `<Message>Request limit exceeded.</Message></Error></Errors><RequestID>throttled-${counts.throttled}</RequestID></Response>`,
      );
      return;
    }
    counts.passed++;
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    get throttled() {
      return counts.throttled;
    },
    get passed() {
      return counts.passed;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

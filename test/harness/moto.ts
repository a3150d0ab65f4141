import { existsSync } from 'node:fs';
import { createServer, request, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, spawnManaged, waitUntil } from '../../embedded/processes.ts';
import { tempDir } from '../../testbed/berth.ts';

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
  return {
    ...(await onLoopback(server)),
    get throttled() {
      return counts.throttled;
    },
    get passed() {
      return counts.passed;
    },
  };
}

/** Serves on a free loopback port; `close` ends the connections still open too. */
async function onLoopback(server: Server): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface LostAnswerProxy {
  url: string;
  /** RunInstances requests that reached EC2 and whose answers berth never got. */
  readonly lost: number;
  /** EC2 is reachable again: everything passes. */
  heal(): void;
  close(): Promise<void>;
}

const unavailable = (res: ServerResponse, n: number) => {
  res.writeHead(503, { 'content-type': 'text/xml;charset=UTF-8' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>Unavailable</Code><Message>The service is unavailable.</Message></Error></Errors><RequestID>lost-${n}</RequestID></Response>`);
};

/**
 * Stands in front of an EC2 endpoint and loses answers: every RunInstances reaches EC2 (which launches the
 * instance) but berth is answered 503; from the first one on, EC2 is out of berth's reach (503 to everything
 * else) until `heal`. What a network partition right after an accepted launch looks like from berth's side.
 */
export async function startLostAnswerProxy(targetUrl: string): Promise<LostAnswerProxy> {
  const target = new URL(targetUrl);
  const state = { lost: 0, unreachable: false, healed: false, answered: 0 };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const launch = /(^|&)Action=RunInstances(&|$)/.test(body.toString('utf8'));
      if (!state.healed && state.unreachable && !launch) return unavailable(res, ++state.answered);
      const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
        if (state.healed || !launch) {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          return;
        }
        up.resume();
        up.on('end', () => {
          state.lost++;
          state.unreachable = true;
          unavailable(res, ++state.answered);
        });
      });
      upstream.on('error', () => res.destroy());
      upstream.end(body);
    });
  });
  return {
    ...(await onLoopback(server)),
    get lost() {
      return state.lost;
    },
    heal: () => {
      state.healed = true;
    },
  };
}

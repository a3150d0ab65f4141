import { rmSync } from 'node:fs';
import { createServer, request, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { tempDir } from '../../testbed/berth.ts';

export interface DockerSocketProxy {
  /** Where the docker provider under test connects instead of the engine's own socket. */
  socketPath: string;
  /** From now on, requests that match answer `status` (a Docker-style JSON error) instead of reaching the engine. */
  fail(match: (method: string, path: string) => boolean, status: number): void;
  /** Requests pass again. */
  heal(): void;
  /** The engine goes away: its socket is gone (connections fail) until `up`. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** Requests answered with an injected failure so far. */
  readonly failed: number;
  close(): Promise<void>;
}

/**
 * A fault proxy in front of the Docker engine's unix socket: HTTP passes through to the engine unless a failure is
 * injected, so the docker provider under test is the real one talking to a real engine that misbehaves on cue.
 * (Plain request/response only: the provider never attaches to a container.)
 */
export async function startDockerSocketProxy(engineSocket: string): Promise<DockerSocketProxy> {
  const socketPath = join(tempDir('docker-proxy'), 'docker.sock');
  const state = { failed: 0, rules: [] as { match: (method: string, path: string) => boolean; status: number }[] };
  const server = createServer((req: IncomingMessage, res) => {
    const path = (req.url ?? '/').replace(/\?.*$/, '');
    const rule = state.rules.find((r) => r.match(req.method ?? 'GET', path));
    if (rule) {
      state.failed++;
      req.resume();
      res.writeHead(rule.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: `injected by the test's fault proxy: ${req.method} ${path} answers ${rule.status}` }));
      return;
    }
    const upstream = request({ socketPath: engineSocket, method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.on('error', () => upstream.destroy());
    req.pipe(upstream);
  });
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
      rmSync(socketPath, { force: true });
    });
  await listen();
  return {
    socketPath,
    fail: (match, status) => state.rules.push({ match, status }),
    heal: () => (state.rules = []),
    down: stop,
    up: listen,
    get failed() {
      return state.failed;
    },
    close: async () => {
      if (server.listening) await stop();
    },
  };
}

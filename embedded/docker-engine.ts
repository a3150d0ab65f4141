import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { waitUntil } from './processes.ts';

/** What outlives a checkout on this machine (the host image, the engine's data): kept once, shared by clones and CI. */
export function berthCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'berth');
}

export interface DockerEngine {
  docker: Docker;
  socketPath: string;
  /** Whether this call started dockerd (it keeps running afterwards, like the system service it stands in for). */
  started: boolean;
}

/**
 * A Docker engine answering on `socketPath`: the one already there, or a `dockerd` started with its data root,
 * exec root, pidfile and log under `stateDir`. The daemon is detached and left running when this process ends:
 * containers are machines and outlive the worker that made them, and parallel test files share one engine.
 * It serves host-network containers only, so it leaves the host's firewall and bridges alone.
 */
export async function ensureDockerEngine(opts: { socketPath?: string; stateDir?: string } = {}): Promise<DockerEngine> {
  const socketPath = opts.socketPath ?? '/var/run/docker.sock';
  const docker = new Docker({ socketPath });
  const answers = async () => (await docker.ping()) !== undefined;
  if (await answers().catch(() => false)) return { docker, socketPath, started: false };

  const stateDir = opts.stateDir ?? join(berthCacheDir(), 'docker-engine');
  mkdirSync(stateDir, { recursive: true });
  const logFile = join(stateDir, 'dockerd.log');
  const log = openSync(logFile, 'a');
  const args = [`--host=unix://${socketPath}`, `--data-root=${join(stateDir, 'data')}`, `--exec-root=${join(stateDir, 'exec')}`, `--pidfile=${join(stateDir, 'dockerd.pid')}`, '--iptables=false', '--bridge=none'];
  // A second caller racing this one starts a dockerd that finds the pidfile taken and exits; both then wait for
  // the socket, which the first one's daemon answers.
  // Its temp files (runc's exec state) go under its own state dir: it outlives the caller, whose TMPDIR may not
  // (a test run removes its own).
  const tmp = join(stateDir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const child = spawn('dockerd', args, { detached: true, stdio: ['ignore', log, log], env: { ...process.env, TMPDIR: tmp } });
  closeSync(log);
  let spawnFailure: Error | undefined;
  child.once('error', (err) => (spawnFailure = err));
  child.unref();
  await waitUntil(`dockerd on ${socketPath} (log: ${logFile})`, async () => spawnFailure !== undefined || (await answers()), { timeoutMs: 60_000 });
  if (spawnFailure) throw new Error(`cannot start dockerd: ${spawnFailure.message}; install Debian's docker.io (scripts/setup.sh does)`);
  return { docker, socketPath, started: true };
}

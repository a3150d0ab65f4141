import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A server process berth started; `stop()` ends it (TERM, then KILL after a grace period). */
export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  logFile: string;
  stop(): Promise<void>;
}

const running = new Set<ManagedProcess>();

export interface SpawnOptions {
  /** Run as this user (PostgreSQL refuses to run as root). */
  uid?: number;
  gid?: number;
  /** What `stop()` sends first; SIGTERM when not given. */
  stopSignal?: NodeJS.Signals;
}

export function spawnManaged(name: string, command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv = process.env, opts: SpawnOptions = {}): ManagedProcess {
  mkdirSync(dirname(logFile), { recursive: true });
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env, uid: opts.uid, gid: opts.gid });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const managed: ManagedProcess = {
    name,
    child,
    logFile,
    async stop() {
      running.delete(managed);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(opts.stopSignal ?? 'SIGTERM');
        const killed = await Promise.race([exited.then(() => true), sleep(5000).then(() => false)]);
        if (!killed) child.kill('SIGKILL');
      }
      await exited;
    },
  };
  child.once('error', (err) => log.write(`spawn failed: ${err.message}\n`));
  running.add(managed);
  return managed;
}

/** Ends every process still running, last started first. */
export async function stopAll(): Promise<void> {
  for (const p of [...running].reverse()) await p.stop();
}

// Whatever happens to this process, leave no server behind: on exit, and on a signal that nothing else in the
// process handles (a test runner killing a test file; npm start installs its own graceful handlers).
const killRunning = () => {
  for (const p of running) p.child.kill('SIGKILL');
};
process.once('exit', killRunning);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (process.listenerCount(signal) > 1) return;
    killRunning();
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const)[signal]);
  });
}

/** A free loopback port: any the kernel picks, or, with `below`, one under it (tried at random). */
export async function freePort(opts: { below?: number } = {}): Promise<number> {
  for (;;) {
    const wanted = opts.below === undefined ? 0 : 10_000 + Math.floor(Math.random() * (opts.below - 10_000));
    const port = await new Promise<number | undefined>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', (err: NodeJS.ErrnoException) => (wanted !== 0 && err.code === 'EADDRINUSE' ? resolve(undefined) : reject(err)));
      srv.listen(wanted, '127.0.0.1', () => {
        const { port } = srv.address() as { port: number };
        srv.close(() => resolve(port));
      });
    });
    if (port !== undefined) return port;
  }
}

/** Polls `probe` until it resolves true; fails with the process's name and log when it exits or time runs out. */
export async function waitUntil(what: string, probe: () => Promise<boolean>, opts: { timeoutMs: number; process?: ManagedProcess }): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  while (Date.now() < deadline) {
    if (opts.process && opts.process.child.exitCode !== null) {
      throw new Error(`${what}: process exited with code ${opts.process.child.exitCode}; see ${opts.process.logFile}`);
    }
    if (await probe().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`${what}: not ready after ${opts.timeoutMs} ms${opts.process ? `; see ${opts.process.logFile}` : ''}`);
}

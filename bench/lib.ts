// What the benchmarks share: timing whole processes (wall clock and CPU), medians, what else the machine was
// doing, and the result files. Imports nothing from test/: a benchmark is not a test.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnManaged, stopAll, waitUntil, type ManagedProcess } from '../embedded/processes.ts';

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A process timed from exec to exit. */
export interface ProcessTiming {
  wallMs: number;
  /** User + system CPU of the process and every child it waited for (getrusage of the tree). */
  cpuS: number;
  /** Peak resident set of the largest process in it. */
  maxRssMB: number;
  stdout: string;
}

const gnuTime = '/usr/bin/time';

/**
 * Runs a command to its end under GNU time, which reports the CPU and peak memory of the process tree as the
 * kernel accounts them; the wall clock runs from spawn to exit. A non-zero exit fails with the command's stderr.
 */
export async function timeProcess(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<ProcessTiming> {
  if (!existsSync(gnuTime)) throw new Error(`${gnuTime} is missing: install the Debian package "time"`);
  const dir = mkdtempSync(join(tmpdir(), 'berth-bench-time-'));
  const report = join(dir, 'time');
  try {
    const started = performance.now();
    const child = spawn(gnuTime, ['-f', '%U %S %M', '-o', report, command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    const wallMs = performance.now() - started;
    if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}: ${stderr.trim().slice(-2000)}`);
    const [user, system, maxRssKiB] = readFileSync(report, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
    return { wallMs, cpuS: user + system, maxRssMB: (maxRssKiB * 1024) / 1e6, stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Busy and total CPU ticks of the whole machine since boot (/proc/stat). */
function machineTicks(): { busy: number; total: number } {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const n = fields.map(Number);
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - n[3] - n[4], total };
}

/**
 * What the machine did while a benchmark ran, besides the benchmark: its cores, how busy they were on average, and
 * the load average at the end (other jobs on a shared machine slow every tool alike; ratios of interleaved runs
 * stay fair, absolute times do not).
 */
export function machineWatch(): () => { cores: number; node: string; busyCores: number; loadAverage: number[] } {
  const before = machineTicks();
  return () => {
    const after = machineTicks();
    const cores = cpus().length;
    return {
      cores,
      node: process.version,
      busyCores: Number((((after.busy - before.busy) / (after.total - before.total)) * cores).toFixed(2)),
      loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
    };
  };
}

/** Writes bench/results/<name>.json; returns its path relative to the repository. */
export function writeResult(name: string, result: unknown): string {
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(result, null, 2));
  return `bench/results/${name}.json`;
}

export const seconds = (ms: number, digits = 2) => `${(ms / 1000).toFixed(digits)} s`;

/**
 * A berth process (`workers/main.ts`, `api/main.ts`, with its arguments) as production runs it, its log in a file;
 * ready when the log says `ready`.
 */
export async function berthProcess(name: string, script: string, args: string[], ready: string, env: NodeJS.ProcessEnv): Promise<ManagedProcess> {
  const logFile = join(mkdtempSync(join(tmpdir(), `berth-bench-${name}-`)), `${name}.log`);
  const proc = spawnManaged(name, process.execPath, ['--import', 'tsx', fileURLToPath(new URL(`../${script}`, import.meta.url)), ...args], logFile, env);
  await waitUntil(name, async () => existsSync(logFile) && readFileSync(logFile, 'utf8').includes(ready), { timeoutMs: 60_000, process: proc });
  return proc;
}

/**
 * Runs a bench's `main`: a failure is printed and sets the exit code; then, whatever happened, the bench's cleanups
 * run newest first and every process it started stops.
 */
export function runBench(main: () => Promise<void>, cleanups: (() => Promise<unknown>)[] = []): void {
  // The process's exit waits for this chain; nothing is left to await it.
  void main()
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    })
    .finally(async () => {
      for (const close of cleanups.reverse()) await close().catch(() => undefined);
      await stopAll();
    });
}

// `npm run bench -- throughput`: no-op replications per second (the image is on the target already, so a
// replication is a resolve and a copy that finds everything there) on two engines, the Temporal dev server (SQLite)
// and the real Temporal server (v1.29.1, its four services as separate processes) on PostgreSQL, each with 1 worker
// process, then 2. Each replication is of its own repository (BENCH_REPOSITORIES of them, one tag each): a copy
// lists its repository's tags (the referrers tag schema), so one repository of thousands of tags would measure that
// listing. For BENCH_SECONDS (60) per phase, replications are started through the API as fast as it takes them,
// with at most BENCH_IN_FLIGHT (100) running at once so that the backlog stays bounded (the latency is then about
// in-flight / throughput). Prints workflows completed per second in that window, p50/p95 start-to-close latency,
// the workers' RSS, CPU-seconds per workflow by component (Temporal server, PostgreSQL, berth's workers, the API,
// the registries; from /proc, each process with its children), and how long a workflow's tasks waited in
// Temporal's queues against how long they ran in the workers: which of the two was the bottleneck.
// BENCH_ENGINES (dev,real) picks the engines; BENCH_DEV_SERVER_DB=memory runs the dev server on in-memory SQLite
// instead of a file. Writes bench/results/throughput.json.
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { startPostgres } from '../embedded/postgres.ts';
import { freePort } from '../embedded/processes.ts';
import { startTemporalDevServer } from '../embedded/temporal-dev-server.ts';
import { startTemporalServer } from '../embedded/temporal-server.ts';
import { registryClient, startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { berthProcesses, bundleWorkflows } from '../testbed/berth-process.ts';
import { buildOciLayout, pushWithSkopeo } from '../testbed/oci-layout.ts';
import { writeResult, runBench } from './lib.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 60);
const inFlightCap = Number(process.env.BENCH_IN_FLIGHT ?? 100);
const devServerDb = process.env.BENCH_DEV_SERVER_DB ?? 'file';
const engines = (process.env.BENCH_ENGINES ?? 'dev,real').split(',') as ('dev' | 'real')[];
const repositories = Number(process.env.BENCH_REPOSITORIES ?? 3000);
const starters = 16;
const clockTicks = 100; // USER_HZ on Linux

/** /proc/<pid>/stat after the command name: [state, ppid, ...]. */
const statFields = (pid: number | string) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');

/**
 * CPU seconds a process has used so far (user + system), with its children's: the ones it has waited for, and the
 * ones still running (PostgreSQL's backends), from /proc.
 */
function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  let ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  for (const child of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    const f = (() => {
      try {
        return statFields(child);
      } catch {
        return undefined; // gone meanwhile
      }
    })();
    if (f && Number(f[1]) === pid) ticks += cpuSeconds(Number(child)) * clockTicks;
  }
  return ticks / clockTicks;
}

/** Busy and total CPU ticks of the whole machine, from /proc/stat: other work on it competes with the bench. */
function machineTicks(): { busy: number; total: number } {
  const [user, nice, system, idle, iowait, ...rest] = readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  const total = [user, nice, system, idle, iowait, ...rest].reduce((a, b) => a + b, 0);
  return { busy: total - idle - iowait, total };
}

const eventMs = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t!.seconds) * 1000 + (t!.nanos ?? 0) / 1e6;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** How long a workflow's tasks (workflow tasks and activities) waited in task queues, and ran in workers. */
async function taskTimes(client: Client, workflowId: string): Promise<{ queuedMs: number; runningMs: number }> {
  const events = (await client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
  const at = new Map(events.map((e) => [String(e.eventId), eventMs(e.eventTime)]));
  let queuedMs = 0;
  let runningMs = 0;
  for (const e of events) {
    const started = e.workflowTaskStartedEventAttributes ?? e.activityTaskStartedEventAttributes;
    if (started) queuedMs += eventMs(e.eventTime) - at.get(String(started.scheduledEventId))!;
    const completed = e.workflowTaskCompletedEventAttributes ?? e.activityTaskCompletedEventAttributes;
    if (completed) runningMs += eventMs(e.eventTime) - at.get(String(completed.startedEventId))!;
  }
  return { queuedMs, runningMs };
}

const rssMB = (pid: number) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)![1]) / 1024;
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

/** One small image in `repositories` repositories on both registries: a replication of any of them copies nothing. */
async function noopImages(source: TestRegistry, target: TestRegistry): Promise<void> {
  const image = await buildOciLayout(tempDir('bench-noop'), '1', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 64 << 10, gzip: true }] }]);
  for (const reg of [source, target]) {
    await pushWithSkopeo(image, reg, 'bench/noop-0');
    const client = registryClient(reg);
    const manifest = await client.getManifest('bench/noop-0', '1');
    const { config, layers } = JSON.parse(manifest.bytes.toString()) as { config: { digest: string }; layers: { digest: string }[] };
    const copy = async (i: number) => {
      for (const blob of [config, ...layers]) await client.mountBlob(`bench/noop-${i}`, blob.digest, 'bench/noop-0');
      await client.putManifest(`bench/noop-${i}`, '1', manifest);
    };
    for (let i = 1; i < repositories; i += 32) await Promise.all(Array.from({ length: Math.min(32, repositories - i) }, (_, j) => copy(i + j)));
    await client.close();
  }
}

interface Engine {
  name: 'dev' | 'real';
  address: string;
  /** The Temporal server's processes, and PostgreSQL's postmaster (its backends are its children). */
  pids: { temporal: number[]; postgres: number[] };
  client: Client;
  stop(): Promise<void>;
}

async function phase(workerCount: number, temporal: Engine, source: TestRegistry, target: TestRegistry, bundle: string) {
  const apiPort = await freePort();
  const { config, file, env } = testConfig(
    `throughput-${temporal.name}-${workerCount}`,
    temporal.address,
    [
      { registry: source, idc: 'idc-a' },
      { registry: target, idc: 'idc-b' },
    ],
    {},
    { api: { host: '127.0.0.1', port: apiPort } },
  );
  const procs = berthProcesses(file, { ...env, BERTH_WORKFLOW_BUNDLE: bundle, BERTH_LOG_LEVEL: process.env.BERTH_LOG_LEVEL ?? 'ERROR' });
  const api = await procs.api(`api-${temporal.name}-${workerCount}`);
  const token = api.token!;
  // Each worker process serves every queue, as `npm start` does: adding a process adds capacity to all of them.
  const workers = await Promise.all(Array.from({ length: workerCount }, (_, i) => procs.worker(`worker-${temporal.name}-${workerCount}-${i}`, [])));
  const query = `TaskQueue = '${config.taskQueues.main}'`;
  const closed = async () => (await temporal.client.workflow.count(`${query} AND ExecutionStatus != 'Running'`)).count;

  const pids = {
    ...temporal.pids,
    workers: workers.map((w) => w.child.pid!),
    api: [api.child.pid!],
    registries: [source, target].map((r) => r.process!.child.pid!),
  };
  const cpuAt = () => Object.fromEntries(Object.entries(pids).map(([k, ps]) => [k, ps.reduce((sum, pid) => sum + cpuSeconds(pid), 0)]));
  const cpuBefore = cpuAt();
  const machineBefore = machineTicks();
  const rss: number[] = workers.map(() => 0);
  let started = 0;
  let refused = 0;
  let done = 0;
  const startedAt = Date.now();
  const end = startedAt + seconds * 1000;
  const watcher = (async () => {
    while (Date.now() < end) {
      done = await closed();
      workers.forEach((w, i) => (rss[i] = Math.max(rss[i], rssMB(w.child.pid!))));
      await sleep(250);
    }
  })();
  await Promise.all(
    Array.from({ length: starters }, async () => {
      while (Date.now() < end) {
        if (started - done >= inFlightCap) {
          await sleep(10);
          continue;
        }
        const repository = `bench/noop-${started++ % repositories}`;
        const res = await fetch(`http://127.0.0.1:${apiPort}/v1/replications`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ image: `${repository}:1`, source: 'idc-a', targets: ['idc-b'] }),
        });
        await res.body?.cancel();
        if (res.status !== 202) refused++;
      }
    }),
  );
  await watcher;
  const cpuAfter = cpuAt();
  const machineAfter = machineTicks();
  const windowEnd = new Date(end).toISOString();
  const completedInWindow = (await temporal.client.workflow.count(`${query} AND ExecutionStatus = 'Completed' AND CloseTime < '${windowEnd}'`)).count;
  // Drain what is still running, so that the next phase starts on an idle server.
  while ((await closed()) < started - refused && Date.now() < end + 120_000) await sleep(500);
  const latencies: number[] = [];
  const completedIds: string[] = [];
  let failed = 0;
  for await (const w of temporal.client.workflow.list({ query })) {
    if (w.status.name !== 'COMPLETED') failed++;
    else latencies.push(w.closeTime!.getTime() - w.startTime.getTime());
    completedIds.push(w.workflowId);
  }
  // A sample of histories is enough to tell where a workflow's time went.
  const sample = completedIds.filter((_, i) => i % Math.ceil(completedIds.length / 100) === 0);
  const times = await Promise.all(sample.map((id) => taskTimes(temporal.client, id)));
  await procs.stopAll();
  const cpu = Object.fromEntries(Object.keys(pids).map((k) => [k, cpuAfter[k] - cpuBefore[k]]));
  return {
    engine: temporal.name,
    workers: workerCount,
    started,
    refused,
    failed,
    completedPerSecond: completedInWindow / seconds,
    latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95) },
    // Per workflow, summed over its tasks: waiting in Temporal's task queues, and running in a worker.
    taskMs: { queued: Math.round(mean(times.map((t) => t.queuedMs))), running: Math.round(mean(times.map((t) => t.runningMs))) },
    workerRssMB: rss.map((r) => Math.round(r)),
    // Cores busy on average over the window (the machine has cpus().length).
    cpuCores: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Number((v / seconds).toFixed(2))])),
    // CPU-seconds per workflow completed in the window, by component.
    cpuSecondsPerWorkflow: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Number((v / Math.max(1, completedInWindow)).toFixed(4))])),
    // The whole machine, this bench's processes and anything else running on it.
    machineBusy: Number(((machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)).toFixed(2)),
  };
}

/** The dev server (SQLite), or the real server with its four services as processes of their own on PostgreSQL. */
async function startEngine(name: Engine['name']): Promise<Engine> {
  const dir = tempDir(`bench-${name}`);
  if (name === 'dev') {
    const dbFile = devServerDb === 'memory' ? undefined : join(dir, 'temporal.db');
    const server = await startTemporalDevServer({ port: await freePort(), headless: true, dbFile, logFile: join(dir, 'temporal.log') });
    const client = new Client({ connection: await Connection.connect({ address: server.address }) });
    return { name, address: server.address, pids: { temporal: [server.child.pid!], postgres: [] }, client, stop: () => server.stop() };
  }
  const pg = await startPostgres({ dir: tempDir('bench-postgres'), port: await freePort() });
  const server = await startTemporalServer({ dir, postgres: pg, port: await freePort(), layout: 'split' });
  const client = new Client({ connection: await Connection.connect({ address: server.address }) });
  const stop = async () => {
    await server.stop();
    await pg.stop();
  };
  return { name, address: server.address, pids: { temporal: server.processes.map((p) => p.child.pid!), postgres: [pg.process!.child.pid!] }, client, stop };
}

async function main() {
  const [source, target] = await Promise.all([startedRegistry('bench-source'), startedRegistry('bench-target')]);
  console.log(`one image in ${repositories} repositories on both registries...`);
  await noopImages(source, target);
  // Workers load the workflow code prebuilt, as in production, rather than each bundling it as it starts.
  const bundle = await bundleWorkflows(join(tempDir('bench-bundle'), 'workflow-bundle.js'));
  const phases: Awaited<ReturnType<typeof phase>>[] = [];
  for (const name of engines) {
    const engine = await startEngine(name);
    for (const n of [1, 2]) {
      console.log(`${name === 'dev' ? 'dev server' : 'real server on PostgreSQL'}, ${n} worker process${n > 1 ? 'es' : ''}: starting replications for ${seconds} s (at most ${inFlightCap} in flight)...`);
      const r = await phase(n, engine, source, target, bundle);
      phases.push(r);
      const perWorkflow = Object.entries(r.cpuSecondsPerWorkflow)
        .map(([k, v]) => `${k} ${(v * 1000).toFixed(1)}`)
        .join(', ');
      console.log(
        `  ${r.completedPerSecond.toFixed(1)} workflows/s; latency p50 ${r.latencyMs.p50} ms, p95 ${r.latencyMs.p95} ms; worker RSS ${r.workerRssMB.join(', ')} MB; ` +
          `tasks queued ${r.taskMs.queued} ms, running ${r.taskMs.running} ms per workflow; CPU ms per workflow: ${perWorkflow}; ` +
          `machine ${Math.round(r.machineBusy * 100)}% busy; started ${r.started}, failed ${r.failed}, refused ${r.refused}`,
      );
    }
    await engine.client.connection.close();
    await engine.stop();
  }
  const cores = cpus().length;
  const of = (engine: string, workers: number) => phases.find((p) => p.engine === engine && p.workers === workers);
  const best = (engine: string) => Math.max(0, ...phases.filter((p) => p.engine === engine).map((p) => p.completedPerSecond));
  // berth's share of the CPU a workflow costs: its workers and API against the engine (server and database).
  const berthShare = (p: (typeof phases)[number]) => {
    const c = p.cpuSecondsPerWorkflow;
    const berth = c.workers + c.api;
    return berth / (berth + c.temporal + c.postgres);
  };
  const result = {
    seconds,
    inFlightCap,
    devServerDb,
    machine: { cores, node: process.version },
    phases,
    speedup: Object.fromEntries(engines.map((e) => [e, (of(e, 2)?.completedPerSecond ?? 0) / (of(e, 1)?.completedPerSecond ?? 1)])),
    realOverDev: engines.length === 2 ? best('real') / best('dev') : null,
    berthCpuShare: phases.map((p) => ({ engine: p.engine, workers: p.workers, share: Number(berthShare(p).toFixed(2)) })),
  };
  // Tasks that wait in Temporal's queues far longer than they run, while the workers have CPU to spare, are waiting
  // on the engine; a machine above 90% busy bounds everyone.
  const bottleneck = (p: (typeof phases)[number]) => {
    const c = p.cpuSecondsPerWorkflow;
    const busiest = Object.entries(c).sort((x, y) => y[1] - x[1])[0][0];
    if (p.machineBusy > 0.9) return `the machine's ${cores} cores (${Math.round(p.machineBusy * 100)}% busy; most CPU per workflow: ${busiest})`;
    if (p.taskMs.queued > 3 * p.taskMs.running && p.cpuCores.workers < 0.5 * p.workers) return `the engine: tasks waited ${p.taskMs.queued} ms in its queues and ran ${p.taskMs.running} ms, workers mostly idle`;
    return 'the workers';
  };
  writeResult('throughput', { ...result, bottleneck: phases.map((p) => ({ engine: p.engine, workers: p.workers, bottleneck: bottleneck(p) })) });
  console.log(`
bottleneck              ${phases.map((p) => `${p.engine}/${p.workers}w: ${bottleneck(p)}`).join('; ')}
2 workers / 1 worker    ${engines.map((e) => `${e} ${result.speedup[e].toFixed(2)}x`).join(', ')}
real / dev server       ${result.realOverDev === null ? 'not measured (BENCH_ENGINES)' : `${result.realOverDev.toFixed(2)}x (best phase of each; goal >= 2x)`}
berth's share of CPU    ${result.berthCpuShare.map((b) => `${b.engine}/${b.workers}w ${Math.round(b.share * 100)}%`).join(', ')} (goal <= 33%)
written to bench/results/throughput.json`);
}

runBench(main);

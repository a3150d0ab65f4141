// `npm run bench -- throughput`: no-op replications per second (the image is on the target already, so a
// replication is a resolve and a copy that finds everything there) with 1 worker process, then 2. Each replication
// is of its own repository (BENCH_REPOSITORIES of them, one tag each): a copy lists its repository's tags (the
// referrers tag schema), so one repository of thousands of tags would measure that listing. For BENCH_SECONDS
// (60) each, replications are started through the API as fast as it takes them, with at most BENCH_IN_FLIGHT (100)
// running at once so that the backlog stays bounded (the latency is then about in-flight / throughput). Prints
// workflows completed per second in that window, p50/p95 start-to-close latency, the workers' RSS, the CPU that the
// Temporal dev server, the workers, the API and the registries used, and how long a workflow's tasks waited in
// Temporal's queues against how long they ran in the workers: which of the two was the bottleneck.
// BENCH_DEV_SERVER_DB=memory runs the dev server on in-memory SQLite instead of a file. Writes
// bench/results/throughput.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { firstAdminTokenFile } from '../api/auth/bootstrap.ts';
import { freePort, spawnManaged, stopAll, waitUntil, type ManagedProcess } from '../embedded/processes.ts';
import { startTemporalDevServer } from '../embedded/temporal-dev-server.ts';
import { registryClient, startedRegistry, tempDir, testConfig, type TestRegistry } from '../test/harness/berth.ts';
import { buildOciLayout, pushWithSkopeo } from '../test/harness/oci-layout.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 60);
const inFlightCap = Number(process.env.BENCH_IN_FLIGHT ?? 100);
const devServerDb = process.env.BENCH_DEV_SERVER_DB ?? 'file';
const repositories = Number(process.env.BENCH_REPOSITORIES ?? 3000);
const starters = 16;
const script = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const clockTicks = 100; // USER_HZ on Linux

/** CPU seconds a process has used so far (user + system), from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
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

async function spawnBerth(name: string, args: string[], ready: string, env: NodeJS.ProcessEnv): Promise<ManagedProcess> {
  const logFile = join(tempDir(`bench-${name}`), `${name}.log`);
  const proc = spawnManaged(name, process.execPath, ['--import', 'tsx', ...args], logFile, env);
  await waitUntil(name, async () => readFileSync(logFile, 'utf8').includes(ready), { timeoutMs: 60_000, process: proc });
  return proc;
}

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

async function phase(workerCount: number, temporal: { address: string; pid: number; client: Client }, source: TestRegistry, target: TestRegistry) {
  const apiPort = await freePort();
  const { config, file, env } = testConfig(`throughput-${workerCount}`, temporal.address, [
    { registry: source, idc: 'idc-a' },
    { registry: target, idc: 'idc-b' },
  ], {}, { api: { host: '127.0.0.1', port: apiPort } });
  const processEnv = { ...process.env, ...env, BERTH_CONFIG: file, BERTH_LOG_LEVEL: process.env.BERTH_LOG_LEVEL ?? 'ERROR' };
  const api = await spawnBerth(`api-${workerCount}`, [script('../api/main.ts')], 'berth api on', processEnv);
  // Not a terminal: the API wrote the first admin's token to a file beside the inventory.
  const token = readFileSync(firstAdminTokenFile(config), 'utf8').trim();
  // Each worker process serves every queue, as `npm start` does: adding a process adds capacity to all of them.
  const workers = await Promise.all(Array.from({ length: workerCount }, (_, i) => spawnBerth(`worker-${workerCount}-${i}`, [script('../workers/main.ts')], 'berth worker polling', processEnv)));
  const query = `TaskQueue = '${config.taskQueues.main}'`;
  const closed = async () => (await temporal.client.workflow.count(`${query} AND ExecutionStatus != 'Running'`)).count;

  const pids = {
    temporal: [temporal.pid],
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
  for (const p of [...workers, api]) await p.stop();
  return {
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
    cpuCores: Object.fromEntries(Object.keys(pids).map((k) => [k, Number(((cpuAfter[k] - cpuBefore[k]) / seconds).toFixed(2))])),
    // The whole machine, this bench's processes and anything else running on it.
    machineBusy: Number(((machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)).toFixed(2)),
  };
}

async function main() {
  const dir = tempDir('bench-temporal');
  const dbFile = devServerDb === 'memory' ? undefined : join(dir, 'temporal.db');
  const server = await startTemporalDevServer({ port: await freePort(), headless: true, dbFile, logFile: join(dir, 'temporal.log') });
  const connection = await Connection.connect({ address: server.address });
  const temporal = { address: server.address, pid: server.child.pid!, client: new Client({ connection }) };
  const [source, target] = await Promise.all([startedRegistry('bench-source'), startedRegistry('bench-target')]);
  console.log(`one image in ${repositories} repositories on both registries...`);
  await noopImages(source, target);
  const phases: Awaited<ReturnType<typeof phase>>[] = [];
  for (const n of [1, 2]) {
    console.log(`${n} worker process${n > 1 ? 'es' : ''}: starting replications for ${seconds} s (at most ${inFlightCap} in flight)...`);
    const r = await phase(n, temporal, source, target);
    phases.push(r);
    console.log(
      `  ${r.completedPerSecond.toFixed(1)} workflows/s; latency p50 ${r.latencyMs.p50} ms, p95 ${r.latencyMs.p95} ms; worker RSS ${r.workerRssMB.join(', ')} MB; ` +
        `tasks queued ${r.taskMs.queued} ms, running ${r.taskMs.running} ms per workflow; ` +
        `CPU cores: dev server ${r.cpuCores.temporal}, workers ${r.cpuCores.workers}, API ${r.cpuCores.api}, registries ${r.cpuCores.registries}; machine ${Math.round(r.machineBusy * 100)}% busy; started ${r.started}, failed ${r.failed}, refused ${r.refused}`,
    );
  }
  const [one, two] = phases;
  const cores = cpus().length;
  const busy = (p: (typeof phases)[number]) => Object.values(p.cpuCores).reduce((a, b) => a + b, 0);
  const result = { seconds, inFlightCap, devServerDb, machine: { cores, node: process.version }, phases, speedup: two.completedPerSecond / one.completedPerSecond };
  // Tasks that wait in Temporal's queues far longer than they run, while the workers have CPU to spare, are
  // waiting on the server, not on the workers.
  const serverBound = two.taskMs.queued > 3 * two.taskMs.running && two.cpuCores.workers < 0.5 * two.workers;
  const saturated = Math.max(one.machineBusy, two.machineBusy) > 0.9;
  const bottleneck = saturated
    ? `the machine's CPU (${Math.round(two.machineBusy * 100)}% busy, ${busy(two).toFixed(2)} of ${cores} cores for the bench's processes): the figures are not worker scaling`
    : serverBound
      ? `the Temporal dev server: tasks waited ${two.taskMs.queued} ms in its queues and ran ${two.taskMs.running} ms, with the workers mostly idle`
      : 'the workers';
  mkdirSync(script('./results/'), { recursive: true });
  writeFileSync(script('./results/throughput.json'), JSON.stringify(result, null, 2));
  console.log(`
2 workers / 1 worker   ${result.speedup.toFixed(2)}x   (goal >= 1.6x where the dev server is not the bottleneck)
dev server CPU         ${one.cpuCores.temporal} then ${two.cpuCores.temporal} cores (SQLite ${devServerDb}); everything measured ${busy(one).toFixed(2)} then ${busy(two).toFixed(2)} of ${cores} cores
bottleneck             ${bottleneck}
written to bench/results/throughput.json`);
  await connection.close();
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => stopAll());

// `npm run bench -- sync`: berth's scheduled sync against `regsync once` (regclient v0.11.7), each timed as a whole
// process from exec to exit. A source of BENCH_REPOSITORIES (50) repositories x BENCH_TAGS (200) tags of tiny
// one-layer images; a target already in step, then the same target with BENCH_DRIFT_PERCENT (5) % of its tags
// missing or at another image (half each), drifted again before every run. BENCH_RUNS (3) interleaved runs each.
// berth runs as `npm start` runs it (an API and a worker process on a Temporal dev server of its own); its timed
// process is a client that asks the API to run the rule now and polls until the run has finished. CPU-seconds are
// user+sys: of the timed process (from /usr/bin/time) and, for berth, of its worker, API and Temporal server over the
// same span (from /proc). Registries run without auth (htpasswd's bcrypt per request would dominate both tools).
// Writes bench/results/sync.json.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { stringify } from 'yaml';
import { freePort } from '../embedded/processes.ts';
import { startTemporalDevServer } from '../embedded/temporal-dev-server.ts';
import { berthProcesses } from '../testbed/berth-process.ts';
import { registryClient, tempDir, testConfig, testRegistry, type TestRegistry } from '../testbed/berth.ts';
import { catalogRefs, pushTinyImages } from '../testbed/catalog.ts';
import { historyBounds, workflowTree } from '../testbed/histories.ts';
import { median, writeResult, runBench } from './lib.ts';

const runs = Number(process.env.BENCH_RUNS ?? 3);
const repositories = Number(process.env.BENCH_REPOSITORIES ?? 50);
const tags = Number(process.env.BENCH_TAGS ?? 200);
const driftPercent = Number(process.env.BENCH_DRIFT_PERCENT ?? 5);
const rule = 'bench';
const script = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const regsync = script('../.tools/bin/regsync');

/** CPU-seconds a running process has used (user + sys), from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Runs a command to its exit under /usr/bin/time: wall seconds, and user+sys CPU-seconds of it and its children. */
async function timed(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ wallS: number; cpuS: number; output: string }> {
  const timeFile = join(tempDir('bench-time'), 'time');
  const child = spawn('/usr/bin/time', ['-f', '%e %U %S', '-o', timeFile, command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`${command} exited with ${code}: ${output.slice(-2000)}`);
  const [wall, user, sys] = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wallS: wall, cpuS: user + sys, output };
}

// The timed berth process: plain Node (no TypeScript loader to start), over the API as any script would call it.
// Asks for a run now, finds the run the schedule started, and polls it until it closes; prints its workflow ID.
const triggerScript = `
const [api, token, rule, known] = process.argv.slice(1);
const started = Date.now();
// Polls every 2% of the time so far (50-500 ms): each poll queries the run, work for the worker and Temporal too.
const pause = () => sleep(Math.min(500, Math.max(50, (Date.now() - started) / 50)));
const call = async (method, path) => {
  const res = await fetch(api + path, { method, headers: { authorization: 'Bearer ' + token } });
  if (res.status >= 400) throw new Error(method + ' ' + path + ': ' + res.status + ' ' + (await res.text()));
  return res.json();
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
await call('POST', '/v1/sync-rules/' + rule + '/run');
const before = new Set(known.split(',').filter(Boolean));
let id;
while (!id) {
  const view = await call('GET', '/v1/sync-rules/' + rule);
  id = [...view.running, ...view.recentRuns.map((r) => r.workflowId)].find((w) => !before.has(w));
  if (!id) await pause();
}
for (;;) {
  const { status } = await call('GET', '/v1/workflows/' + encodeURIComponent(id));
  if (status !== 'RUNNING') {
    console.log(JSON.stringify({ workflowId: id, status }));
    process.exit(status === 'COMPLETED' ? 0 : 1);
  }
  await pause();
}
`;

interface Measurement {
  tool: 'berth' | 'regsync';
  target: 'inStep' | 'drift';
  wallS: number;
  /** The timed process (and its children). */
  cpuS: number;
  /** berth's side processes over the run: worker, API, Temporal server; and the two registries (both tools). */
  sideCpuS: Record<string, number>;
  workflowId?: string;
}

async function main() {
  const temporalDir = tempDir('bench-sync-temporal');
  const temporal = await startTemporalDevServer({ port: await freePort(), headless: true, dbFile: join(temporalDir, 'temporal.db'), logFile: join(temporalDir, 'temporal.log') });
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection });

  const source = await testRegistry('bench-sync-source', { auth: 'none' });
  await source.start();
  const refs = catalogRefs('bench/app', repositories, tags);
  console.log(`pushing ${refs.length} tiny images (${repositories} repositories x ${tags} tags) to the source...`);
  const started = Date.now();
  const push = registryClient(source);
  const digests = await pushTinyImages(push, refs);
  console.log(`  ${((Date.now() - started) / 1000).toFixed(0)} s`);

  // The target starts as a copy of the source's storage (in step). Before each drift run, the same tags lose their
  // manifest or get another image, through the registry's API: a few hundred requests instead of a fresh copy.
  const target = await testRegistry('bench-sync-target', { auth: 'none' });
  await source.stop();
  execFileSync('cp', ['-a', join(source.dataDir, 'storage'), join(target.dataDir, 'storage')]);
  await source.start();
  await target.start();
  const every = Math.round(100 / driftPercent);
  const drifted = refs.filter((_, i) => i % every === 0);
  const missing = drifted.filter((_, i) => i % 2 === 0);
  const other = drifted.filter((_, i) => i % 2 === 1).map((r) => ({ ...r, variant: '-drift' }));
  const drifting = registryClient(target);
  const drift = async () => {
    for (const r of missing) await drifting.deleteManifest(r.repository, digests.get(`${r.repository}:${r.tag}`)!);
    await pushTinyImages(drifting, other);
  };

  // berth as npm start runs it: an API and one worker process serving every queue.
  const apiPort = await freePort();
  const { file, env } = testConfig(
    'bench-sync',
    temporal.address,
    [
      { registry: source, idc: 'idc-a' },
      { registry: target, idc: 'idc-b' },
    ],
    {},
    {
      api: { host: '127.0.0.1', port: apiPort },
      syncRules: [{ name: rule, source: source.name, targets: [target.name], schedule: { every: '24h' }, paused: true }],
    },
  );
  const berth = berthProcesses(file, { ...env, BERTH_LOG_LEVEL: process.env.BERTH_LOG_LEVEL ?? 'ERROR' });
  const api = await berth.api();
  const token = api.token!;
  const worker = await berth.worker('worker', []);

  const regsyncConfig = join(tempDir('bench-regsync'), 'regsync.yml');
  const host = (r: TestRegistry) => new URL(r.url).host;
  writeFileSync(
    regsyncConfig,
    stringify({
      version: 1,
      creds: [source, target].map((r) => ({ registry: host(r), tls: 'disabled' })),
      defaults: { skipDockerConfig: true },
      sync: [{ source: host(source), target: host(target), type: 'registry' }],
    }),
  );

  const sides = () => ({ worker: worker.child.pid!, api: api.child.pid!, temporal: temporal.child.pid!, registries: [source, target] });
  const sideCpu = () => {
    const s = sides();
    return { worker: cpuSeconds(s.worker), api: cpuSeconds(s.api), temporal: cpuSeconds(s.temporal), registries: s.registries.reduce((n, r) => n + cpuSeconds(r.process!.child.pid!), 0) };
  };
  const knownRuns: string[] = [];
  const measure = async (tool: Measurement['tool'], kind: Measurement['target']): Promise<Measurement> => {
    if (kind === 'drift') await drift();
    const before = sideCpu();
    const result =
      tool === 'berth'
        ? await timed(process.execPath, ['--input-type=module', '-e', triggerScript, `http://127.0.0.1:${apiPort}`, token, rule, knownRuns.join(',')])
        : await timed(regsync, ['once', '-c', regsyncConfig, '-v', 'warn']);
    const after = sideCpu();
    const sideCpuS = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, Number((v - before[k as keyof typeof before]).toFixed(2))]));
    const m: Measurement = { tool, target: kind, wallS: result.wallS, cpuS: result.cpuS, sideCpuS };
    if (tool === 'berth') {
      m.workflowId = JSON.parse(result.output.trim().split('\n').at(-1)!).workflowId;
      knownRuns.push(m.workflowId!);
    }
    await verify(kind);
    return m;
  };
  // Every drifted tag has the source's image afterwards (the in-step target had nothing to fix).
  const verify = async (kind: Measurement['target']) => {
    if (kind === 'inStep') return;
    for (const r of drifted) {
      const digest = await drifting.headManifest(r.repository, r.tag);
      if (digest !== digests.get(`${r.repository}:${r.tag}`)) throw new Error(`${r.repository}:${r.tag} on the target is ${digest}, not the source's image`);
    }
  };

  const measurements: Measurement[] = [];
  for (const kind of ['inStep', 'drift'] as const) {
    for (let i = 0; i < runs; i++) {
      // Interleaved, first tool alternating, so that neither always runs on a warmer machine.
      for (const tool of i % 2 === 0 ? (['berth', 'regsync'] as const) : (['regsync', 'berth'] as const)) {
        const m = await measure(tool, kind);
        measurements.push(m);
        console.log(`${kind.padEnd(6)} ${tool.padEnd(7)} ${m.wallS.toFixed(2)} s wall, ${m.cpuS.toFixed(2)} CPU-s; ${JSON.stringify(m.sideCpuS)}`);
      }
    }
  }

  // Where berth's time went, from its runs' own histories: activities by type, and Temporal's queues; per run, how
  // long the workflow ran (first event of the run to the last of its tree) against the timed process's wall.
  const profile: Record<string, { count: number; runningS: number; queuedS: number }> = {};
  const bounds = [];
  const timelines = [];
  for (const m of measurements.filter((x) => x.tool === 'berth')) {
    bounds.push({ target: m.target, ...(await historyBounds(client, m.workflowId!)) });
    let first = Infinity;
    let last = 0;
    for await (const run of workflowTree(client, m.workflowId!)) {
      const events = run.history.events ?? [];
      const at = new Map(events.map((e) => [String(e.eventId), Number(e.eventTime!.seconds) + (e.eventTime!.nanos ?? 0) / 1e9]));
      first = Math.min(first, ...at.values());
      last = Math.max(last, ...at.values());
      const typeOf = new Map(events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType!.name!]));
      for (const e of events) {
        const startedEvent = e.activityTaskStartedEventAttributes ?? e.workflowTaskStartedEventAttributes;
        const completed = e.activityTaskCompletedEventAttributes ?? e.workflowTaskCompletedEventAttributes;
        const key = `${m.target}:${typeOf.get(String((startedEvent ?? completed)?.scheduledEventId)) ?? 'workflow task'}`;
        profile[key] ??= { count: 0, runningS: 0, queuedS: 0 };
        if (startedEvent) profile[key].queuedS += at.get(String(e.eventId))! - at.get(String(startedEvent.scheduledEventId))!;
        if (completed) {
          profile[key].count++;
          profile[key].runningS += at.get(String(e.eventId))! - at.get(String(completed.startedEventId))!;
        }
      }
    }
    timelines.push({ target: m.target, wallS: m.wallS, workflowS: Number((last - first).toFixed(2)) });
  }

  const summary = Object.fromEntries(
    (['inStep', 'drift'] as const).map((kind) => {
      const of = (tool: Measurement['tool']) => measurements.filter((m) => m.tool === tool && m.target === kind);
      const berthCpu = (m: Measurement) => m.cpuS + m.sideCpuS.worker + m.sideCpuS.api + m.sideCpuS.temporal;
      const b = { wallS: median(of('berth').map((m) => m.wallS)), cpuS: median(of('berth').map(berthCpu)) };
      const r = { wallS: median(of('regsync').map((m) => m.wallS)), cpuS: median(of('regsync').map((m) => m.cpuS)) };
      return [kind, { berth: b, regsync: r, wallRatio: Number((b.wallS / r.wallS).toFixed(2)), cpuRatio: Number((b.cpuS / r.cpuS).toFixed(2)), goal: kind === 'inStep' ? 1.0 : 1.5 }];
    }),
  );
  const result = { repositories, tags, driftPercent, runs, summary, historyBounds: bounds, profile, timelines, measurements };
  writeResult('sync', result);
  for (const [kind, s] of Object.entries(summary)) {
    console.log(
      `${kind.padEnd(6)} berth ${s.berth.wallS.toFixed(2)} s (${s.berth.cpuS.toFixed(2)} CPU-s with worker, API and Temporal), regsync ${s.regsync.wallS.toFixed(2)} s (${s.regsync.cpuS.toFixed(2)} CPU-s): ` +
        `berth/regsync ${s.wallRatio} (goal <= ${s.goal}: ${s.wallRatio <= s.goal ? 'met' : 'not met'})`,
    );
  }
  const longest = Math.max(...bounds.map((b) => b.longest.events));
  const largest = Math.max(...bounds.map((b) => b.largestPayload.bytes));
  console.log(`histories: longest ${longest} events (< 10,000), largest payload ${(largest / 1024).toFixed(1)} KiB (< 256 KiB)\nwritten to bench/results/sync.json`);
  await drifting.close();
  await push.close();
  await connection.close();
}

runBench(main);

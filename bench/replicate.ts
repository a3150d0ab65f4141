// `npm run bench` (replicate): berth's copier against crane, regctl and skopeo, every tool timed as a whole process
// from exec to exit (bench/lib.ts: wall clock, and CPU-seconds of the process tree from GNU time), on three
// workloads and two registry implementations (CNCF Distribution v3 and Debian's docker-registry 2.8):
//   single  one 200 MB layer
//   index   430 MB, an index of 2 platforms of 5 layers each
//   small   1,000 blobs of 50 KB (5 platforms of 200 layers): the cost of each request
// BENCH_RUNS (5) interleaved rounds, each tool copying into an emptied target, the tools' order rotating from
// round to round. Each tool runs as shipped (its default concurrency); the registries run without auth, so that
// the copiers are measured, not the registries' bcrypt. The API path is measured apart on Distribution v3:
// POST /v1/replications to COMPLETED for the same copies (Temporal's share shown), and for a no-op replication
// (everything already on the target). berth's RSS growth is its peak RSS in a copy less its peak in a copy that
// finds everything present, per GB copied. Writes bench/results/replicate.json.
// BENCH_WORKLOADS, BENCH_REGISTRIES (v3, v2) and BENCH_TOOLS narrow a run.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../embedded/processes.ts';
import { startTemporalDevServer } from '../embedded/temporal-dev-server.ts';
import { Client, Connection } from '@temporalio/client';
import { testApi } from '../testbed/api.ts';
import { startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage, type PlatformSpec } from '../testbed/oci-layout.ts';
import type { replicateImage } from '../workflows/replicate-image.ts';
import { startWorkers } from '../workers/run.ts';
import { machineWatch, median, seconds, timeProcess, writeResult, runBench } from './lib.ts';

const runs = Number(process.env.BENCH_RUNS ?? 5);
const tool = (name: string) => fileURLToPath(new URL(`../.tools/bin/${name}`, import.meta.url));
const berthBin = fileURLToPath(new URL('../bin/berth', import.meta.url));

const layers = (count: number, size: number) => Array.from({ length: count }, () => ({ size }));
const platform = (architecture: string, specs: { size: number }[]): PlatformSpec => ({ os: 'linux', architecture, layers: specs });
const workloads: Record<string, { what: string; platforms: PlatformSpec[] }> = {
  single: { what: 'one 200 MB layer', platforms: [platform('amd64', layers(1, 200e6))] },
  index: { what: '430 MB, 2 platforms x 5 layers', platforms: ['amd64', 'arm64'].map((a) => platform(a, layers(5, 43e6))) },
  small: { what: '1,000 blobs of 50 KB, 5 platforms x 200 layers', platforms: ['amd64', 'arm64', 'ppc64le', 's390x', 'riscv64'].map((a) => platform(a, layers(200, 50_000))) },
};
const registryKinds = { v3: { what: 'CNCF Distribution v3.1.2', version: 3 }, v2: { what: "Debian's docker-registry 2.8", version: 2 } } as const;
type Kind = keyof typeof registryKinds;
const tools = ['berth', 'crane', 'regctl', 'skopeo'] as const;
type Tool = (typeof tools)[number];

const pick = <T extends string>(env: string | undefined, all: readonly T[]): T[] => {
  const chosen = env ? (env.split(',') as T[]) : [...all];
  for (const c of chosen) if (!all.includes(c)) throw new Error(`unknown "${c}": one of ${all.join(', ')}`);
  return chosen;
};
const chosenWorkloads = pick(process.env.BENCH_WORKLOADS, Object.keys(workloads));
const chosenKinds = pick(process.env.BENCH_REGISTRIES, Object.keys(registryKinds) as Kind[]);
const chosenTools = pick(process.env.BENCH_TOOLS, tools);

const cleanups: (() => Promise<unknown>)[] = [];
const ref = (r: TestRegistry, repository: string) => `${new URL(r.url).host}/${repository}:v1`;

/** The command line of each tool for one copy, with its defaults. */
function commandOf(t: Tool, from: string, to: string, regctlConfig: string): { command: string; args: string[]; env: NodeJS.ProcessEnv } {
  switch (t) {
    case 'berth':
      return { command: berthBin, args: ['copy', from, to], env: process.env };
    case 'crane':
      return { command: tool('crane'), args: ['copy', '--insecure', from, to], env: process.env };
    case 'regctl':
      return { command: tool('regctl'), args: ['image', 'copy', from, to], env: { ...process.env, REGCTL_CONFIG: regctlConfig } };
    case 'skopeo':
      return { command: 'skopeo', args: ['copy', '--all', '--preserve-digests', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${from}`, `docker://${to}`], env: process.env };
  }
}

/** Empties a registry in place: it runs without a cache, so an empty storage directory is an empty registry. */
function empty(r: TestRegistry): void {
  rmSync(join(r.dataDir, 'storage'), { recursive: true, force: true });
  mkdirSync(join(r.dataDir, 'storage'));
}

interface Cell {
  wallMs: number[];
  cpuS: number[];
  maxRssMB: number[];
}

async function main() {
  const watch = machineWatch();
  const images: Record<string, BuiltImage> = {};
  for (const w of chosenWorkloads) {
    console.log(`building ${w}: ${workloads[w].what}...`);
    images[w] = await buildOciLayout(tempDir(`bench-${w}`), 'v1', workloads[w].platforms);
  }
  const regctlConfig = join(tempDir('bench-regctl'), 'config.json');
  const results: Record<string, Record<string, Record<Tool, Cell> & { bytes: number }>> = {};
  const rss: Record<string, { copyMB: number; noopMB: number; growthMB: number; growthMBPerGB: number }> = {};
  let api: Record<string, { replicationMs: number[]; noopMs: number[] }> = {};

  for (const kind of chosenKinds) {
    const { version, what } = registryKinds[kind];
    console.log(`registries: ${what}`);
    const source = await startedRegistry(`bench-${kind}-source`, { auth: 'none', version });
    const target = await startedRegistry(`bench-${kind}-target`, { auth: 'none', version });
    cleanups.push(source.stop, target.stop);
    for (const r of [source, target]) execFileSync(tool('regctl'), ['registry', 'set', '--tls', 'disabled', new URL(r.url).host], { env: { ...process.env, REGCTL_CONFIG: regctlConfig } });
    for (const w of chosenWorkloads) await pushWithSkopeo(images[w], source, `bench/${w}`);

    // The API path needs Temporal, the workers and the API: on Distribution v3, the goals' registry.
    const apiPath = kind === 'v3' ? await startApiPath(source, target) : undefined;
    results[kind] = {};
    for (const w of chosenWorkloads) {
      const [from, to] = [ref(source, `bench/${w}`), ref(target, `bench/${w}`)];
      const cell = Object.fromEntries(chosenTools.map((t) => [t, { wallMs: [], cpuS: [], maxRssMB: [] }])) as unknown as Record<Tool, Cell>;
      results[kind][w] = { ...cell, bytes: images[w].blobBytes };
      const copyWith = async (t: Tool) => {
        const { command: c, args, env } = commandOf(t, from, to, regctlConfig);
        return timeProcess(c, args, env);
      };
      // Untimed: builds berth's CLI bundle, reads every tool's binary and the source's blobs into the page cache.
      for (const t of chosenTools) {
        empty(target);
        await copyWith(t);
      }
      const noop = await copyWith('berth'); // the target holds the image: what berth's process needs without data
      const api1: { replicationMs: number[]; noopMs: number[] } = { replicationMs: [], noopMs: [] };
      for (let round = 0; round < runs; round++) {
        const order = [...chosenTools.slice(round % chosenTools.length), ...chosenTools.slice(0, round % chosenTools.length)];
        for (const t of order) {
          empty(target);
          const timing = await copyWith(t);
          if ((await digestWithSkopeo(target, `bench/${w}:v1`)) !== images[w].digest) throw new Error(`${t}: the target does not serve ${images[w].digest}`);
          cell[t].wallMs.push(timing.wallMs);
          cell[t].cpuS.push(timing.cpuS);
          cell[t].maxRssMB.push(timing.maxRssMB);
          console.log(`  ${kind} ${w.padEnd(6)} round ${round + 1}/${runs} ${t.padEnd(6)} ${seconds(timing.wallMs)}  cpu ${timing.cpuS.toFixed(2)} s`);
        }
        if (apiPath) {
          empty(target);
          api1.replicationMs.push(await apiPath.replicate(`bench/${w}:v1`, images[w].digest));
          api1.noopMs.push(await apiPath.replicate(`bench/${w}:v1`, images[w].digest));
          console.log(`  ${kind} ${w.padEnd(6)} round ${round + 1}/${runs} API    ${seconds(api1.replicationMs.at(-1)!)}, no-op ${seconds(api1.noopMs.at(-1)!)}`);
        }
      }
      if (apiPath) api = { ...api, [w]: api1 };
      const copyMB = median(cell.berth?.maxRssMB ?? [NaN]);
      rss[`${kind}/${w}`] = { copyMB, noopMB: noop.maxRssMB, growthMB: copyMB - noop.maxRssMB, growthMBPerGB: (copyMB - noop.maxRssMB) / (images[w].blobBytes / 1e9) };
    }
    await apiPath?.close();
  }

  const summary = Object.fromEntries(
    Object.entries(results).map(([kind, byWorkload]) => [
      kind,
      Object.fromEntries(
        Object.entries(byWorkload).map(([w, r]) => {
          const wall = Object.fromEntries(chosenTools.map((t) => [t, median(r[t].wallMs)])) as Record<Tool, number>;
          const cpu = Object.fromEntries(chosenTools.map((t) => [t, median(r[t].cpuS)])) as Record<Tool, number>;
          const fastestGo = Math.min(wall.crane ?? Infinity, wall.regctl ?? Infinity);
          return [w, { medianWallMs: wall, medianCpuS: cpu, berthOverFastestGo: wall.berth / fastestGo, berthCpuOverCrane: cpu.berth / cpu.crane }];
        }),
      ),
    ]),
  );
  const apiSummary = Object.fromEntries(
    Object.entries(api).map(([w, a]) => {
      const copyMs = summary.v3?.[w]?.medianWallMs.berth;
      return [w, { medianReplicationMs: median(a.replicationMs), berthCopyProcessMs: copyMs, temporalShareMs: median(a.replicationMs) - copyMs, medianNoopMs: median(a.noopMs), ...a }];
    }),
  );
  const result = { runs, workloads: Object.fromEntries(chosenWorkloads.map((w) => [w, { what: workloads[w].what, bytes: images[w].blobBytes }])), summary, api: apiSummary, berthRss: rss, timings: results, machine: watch() };
  const file = writeResult('replicate', result);

  console.log(`\n${'registry/workload'.padEnd(18)}${chosenTools.map((t) => `${t} wall/cpu`.padStart(17)).join('')}   berth/fastest Go   berth cpu/crane`);
  for (const [kind, byWorkload] of Object.entries(summary)) {
    for (const [w, s] of Object.entries(byWorkload)) {
      const cells = chosenTools.map((t) => `${seconds(s.medianWallMs[t])}/${s.medianCpuS[t].toFixed(2)}`.padStart(17)).join('');
      console.log(`${`${kind}/${w}`.padEnd(18)}${cells}   ${s.berthOverFastestGo.toFixed(2).padStart(16)}   ${s.berthCpuOverCrane.toFixed(2).padStart(15)}`);
    }
  }
  for (const [w, a] of Object.entries(apiSummary)) {
    console.log(
      `API v3/${w}: POST -> COMPLETED ${seconds(a.medianReplicationMs)} (berth copy ${seconds(a.berthCopyProcessMs)}; Temporal and the workflow ${seconds(a.temporalShareMs)}); no-op ${seconds(a.medianNoopMs)} (goal <= 0.3 s)`,
    );
  }
  for (const [k, r] of Object.entries(rss)) {
    console.log(`berth RSS ${k}: ${r.copyMB.toFixed(0)} MB copying, ${r.noopMB.toFixed(0)} MB with nothing to copy: +${r.growthMB.toFixed(0)} MB, ${r.growthMBPerGB.toFixed(0)} MB per GB copied (goal < 100)`);
  }
  console.log(`machine: ${result.machine.cores} cores, ${result.machine.busyCores} busy on average, load ${result.machine.loadAverage.join(' ')}\nwritten to ${file}`);
}

/** Temporal (dev server), berth's workers and API on the two registries: replications as users start them. */
async function startApiPath(source: TestRegistry, target: TestRegistry) {
  const dir = tempDir('bench-temporal');
  const server = await startTemporalDevServer({ port: await freePort(), headless: true, dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'temporal.log') });
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const { config } = testConfig('bench-replicate', server.address, [
    { registry: source, idc: 'idc-a' },
    { registry: target, idc: 'idc-b' },
  ]);
  const workers = await startWorkers(config);
  const api = await testApi(config, client);
  return {
    /** POST /v1/replications, then the workflow's result: milliseconds from the request to COMPLETED. */
    async replicate(image: string, digest: string): Promise<number> {
      const started = performance.now();
      const res = await api.inject({ method: 'POST', url: '/v1/replications', payload: { image, source: 'idc-a', targets: ['idc-b'] } });
      if (res.statusCode !== 202) throw new Error(`POST /v1/replications: ${res.statusCode} ${res.body}`);
      const result = await client.workflow.getHandle<typeof replicateImage>(res.json().workflowId, res.json().runId).result();
      const ms = performance.now() - started;
      if (result[target.name].digest !== digest) throw new Error(`the replication reports ${result[target.name].digest}, not ${digest}`);
      return ms;
    },
    async close() {
      await api.close();
      await workers.shutdown();
      await connection.close();
      await server.stop();
    },
  };
}

runBench(main, cleanups);

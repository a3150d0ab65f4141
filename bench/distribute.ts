// `npm run bench -- distribute`: berth's distributeImage over emulated WAN links (bench/wan-link.ts: every
// registry behind an uplink of BENCH_LINK_MIB_S each way and BENCH_LINK_RTT_MS), in two topologies:
//   tree   an image of >= 300 MB from the master onto the 6 other registries of a 3-level IDC tree (master -> idc-a,
//          idc-b; each of those -> two sub-IDCs), against serial skopeo copies from the master, one after another
//          (Harbor's replication), and the same copies all at once (a star). Goal: berth <= 0.5 x the star.
//   chain  an image of 6 similar layers down a 4-level chain (idc-0 -> idc-1 -> idc-2 -> idc-3), against the same
//          image over a single link. Goal: the chain <= 1.6 x the single link.
// BENCH_RUNS (3) interleaved rounds, every method into emptied registries. berth runs as in production: the API, a
// main worker, and a worker process per IDC (each skopeo copy is a process of its own too). Prints medians,
// ratios, the floors the links allow and the bytes over each link (berth must carry the image once over every
// inter-IDC link); writes bench/results/distribute.json. BENCH_TOPOLOGIES (tree,chain) narrows a run.
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { freePort } from '../embedded/processes.ts';
import { startTemporalDevServer } from '../embedded/temporal-dev-server.ts';
import { testApi } from '../testbed/api.ts';
import { startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';
import type { DistributeImageResult } from '../contracts/distribution.ts';
import type { distributeImage } from '../workflows/distribute-image.ts';
import { berthProcess, machineWatch, median, seconds, writeResult, runBench } from './lib.ts';
import { startWanLinks, type LinkBytes } from './wan-link.ts';

const run = promisify(execFile);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const link = { bytesPerSecond: Number(process.env.BENCH_LINK_MIB_S ?? 40) * 2 ** 20, rttMs: Number(process.env.BENCH_LINK_RTT_MS ?? 20) };
const topologies = (process.env.BENCH_TOPOLOGIES ?? 'tree,chain').split(',');
const repository = 'bench/app';
const tag = 'v1';

interface Node {
  name: string;
  idc: string;
  parent?: string;
}
// Registry names differ from IDC names: berth.yaml resolves either. Three roots: the tree, the chain, the single link.
const tree: Node[] = [
  { name: 'hub', idc: 'master' },
  { name: 'a', idc: 'idc-a', parent: 'master' },
  { name: 'b', idc: 'idc-b', parent: 'master' },
  { name: 'a1', idc: 'sub-a1', parent: 'idc-a' },
  { name: 'a2', idc: 'sub-a2', parent: 'idc-a' },
  { name: 'b1', idc: 'sub-b1', parent: 'idc-b' },
  { name: 'b2', idc: 'sub-b2', parent: 'idc-b' },
];
const chain: Node[] = [0, 1, 2, 3].map((i) => ({ name: `c${i}`, idc: `chain-${i}`, ...(i > 0 ? { parent: `chain-${i - 1}` } : {}) }));
const single: Node[] = [
  { name: 's0', idc: 'single-0' },
  { name: 's1', idc: 'single-1', parent: 'single-0' },
];
const shapes = {
  tree: { nodes: tree, layers: 4, layerMiB: Number(process.env.BENCH_LAYER_MIB ?? 80) },
  chain: { nodes: chain, layers: 6, layerMiB: Number(process.env.BENCH_CHAIN_LAYER_MIB ?? 40) },
};
const methods = { tree: ['berth', 'serial', 'star'], chain: ['chain', 'single'] } as const;

const childrenOf = (nodes: Node[], idc: string) => nodes.filter((t) => t.parent === idc);
/**
 * What the links allow berth, in ms: each IDC's uplink sends the image once per child, and can start once the
 * first layer has come down to it (the copies below pull each layer as soon as it lands).
 */
const pipelinedFloorMs = (nodes: Node[], idc: string, imageMs: number, layerMs: number, startMs = 0): number => {
  const children = childrenOf(nodes, idc);
  return Math.max(startMs + children.length * imageMs, ...children.map((c) => pipelinedFloorMs(nodes, c.idc, imageMs, layerMs, startMs + children.length * layerMs)));
};

const cleanups: (() => Promise<unknown>)[] = [];
const mb = (bytes: number) => (bytes / 1e6).toFixed(0);

async function main() {
  const watch = machineWatch();
  const nodes = [...tree, ...chain, ...single];
  const registries: Record<string, TestRegistry> = {};
  for (const { name } of nodes) {
    registries[name] = await startedRegistry(name);
    cleanups.push(registries[name].stop);
  }
  const images: Record<string, BuiltImage> = {};
  for (const t of topologies as (keyof typeof shapes)[]) {
    const { layers, layerMiB } = shapes[t];
    console.log(`building a ${layers * layerMiB} MiB image of ${layers} layers for the ${t}...`);
    images[t] = await buildOciLayout(tempDir(`bench-${t}`), tag, [{ os: 'linux', architecture: 'amd64', layers: Array.from({ length: layers }, () => ({ size: layerMiB << 20 })) }]);
  }
  // Each image arrives at its roots from their own IDC, not over the WAN.
  if (images.tree) await pushWithSkopeo(images.tree, registries.hub, repository);
  if (images.chain) for (const root of ['c0', 's0']) await pushWithSkopeo(images.chain, registries[root], repository);
  const links = await startWanLinks(Object.fromEntries(nodes.map((t) => [t.name, registries[t.name].url])), link);
  cleanups.push(links.close);
  const across = (name: string) => ({ ...registries[name], url: links.urls[name] });

  const dir = tempDir('bench-temporal');
  const temporal = await startTemporalDevServer({ port: await freePort(), headless: true, dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'temporal.log') });
  cleanups.push(() => temporal.stop());
  const connection = await Connection.connect({ address: temporal.address });
  cleanups.push(() => connection.close());
  const client = new Client({ connection });
  const { config, file, env } = testConfig(
    'bench-distribute',
    temporal.address,
    nodes.map((t) => ({ registry: registries[t.name], idc: t.idc, parent: t.parent, url: links.urls[t.name] })),
  );
  const workerEnv = { ...process.env, ...env, BERTH_CONFIG: file, BERTH_LOG_LEVEL: 'ERROR' };
  const roots = nodes.filter((t) => !t.parent).map((t) => t.idc);
  const workerSets = [['main', ['--no-idc']], ['roots', ['--idc', roots.join(','), '--no-main']], ...nodes.filter((t) => t.parent).map((t) => [t.idc, ['--idc', t.idc, '--no-main']] as const)] as const;
  for (const [name, args] of workerSets) {
    const worker = await berthProcess(`worker-${name}`, 'workers/main.ts', [...args], 'berth worker polling', workerEnv);
    cleanups.push(() => worker.stop());
  }
  const api = await testApi(config, client);
  cleanups.push(api.close);

  /** A distribution through the API, from `from`: how long each IDC's copy took. */
  const distribution = async (from: string): Promise<Record<string, number>> => {
    const res = await api.inject({ method: 'POST', url: '/v1/distributions', payload: { image: `${repository}:${tag}`, from } });
    if (res.statusCode !== 202) throw new Error(`POST /v1/distributions: ${res.statusCode} ${res.body}`);
    const result: DistributeImageResult = await client.workflow.getHandle<typeof distributeImage>(res.json().workflowId, res.json().runId).result();
    return Object.fromEntries(Object.entries(result).map(([idc, r]) => [idc, r.durationMs!]));
  };
  const skopeoCopy = async (target: string) => {
    const [from, to] = [across('hub'), across(target)];
    await run('skopeo', [
      'copy',
      '--all',
      '--preserve-digests',
      '--quiet',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      '--src-creds',
      `${from.username}:${from.password}`,
      '--dest-creds',
      `${to.username}:${to.password}`,
      `docker://${new URL(from.url).host}/${repository}:${tag}`,
      `docker://${new URL(to.url).host}/${repository}:${tag}`,
    ]);
  };
  const treeTargets = tree.slice(1).map((t) => t.name);
  const idcMs: Record<string, Record<string, number>[]> = { berth: [], chain: [] };
  const copiers: Record<string, { targets: string[]; image: string; go: () => Promise<unknown> }> = {
    berth: { targets: treeTargets, image: 'tree', go: async () => idcMs.berth.push(await distribution('master')) },
    serial: {
      targets: treeTargets,
      image: 'tree',
      go: async () => {
        for (const t of treeTargets) await skopeoCopy(t);
      },
    },
    star: { targets: treeTargets, image: 'tree', go: () => Promise.all(treeTargets.map(skopeoCopy)) },
    chain: { targets: ['c1', 'c2', 'c3'], image: 'chain', go: async () => idcMs.chain.push(await distribution('chain-0')) },
    single: { targets: ['s1'], image: 'chain', go: () => distribution('single-0') },
  };

  const chosen = topologies.flatMap((t) => methods[t as keyof typeof methods]);
  const times: Record<string, number[]> = Object.fromEntries(chosen.map((m) => [m, []]));
  const bytes: Record<string, Record<string, LinkBytes>[]> = Object.fromEntries(chosen.map((m) => [m, []]));
  for (let i = 0; i < runs; i++) {
    for (const method of chosen) {
      const { targets, image, go } = copiers[method];
      // Emptied in place rather than restarted: another process could take a registry's port meanwhile. The
      // registries are configured without a cache, so an empty storage directory is an empty registry.
      for (const name of targets) {
        rmSync(join(registries[name].dataDir, 'storage'), { recursive: true });
        mkdirSync(join(registries[name].dataDir, 'storage'));
      }
      await links.take();
      const started = performance.now();
      await go();
      times[method].push(performance.now() - started);
      bytes[method].push(await links.take());
      // Checked directly on each registry, not across its link: the check is not part of the method.
      for (const name of targets) {
        if ((await digestWithSkopeo(registries[name], `${repository}:${tag}`)) !== images[image].digest) throw new Error(`${method}: ${name} does not serve the image`);
      }
      console.log(`round ${i + 1}/${runs} ${method.padEnd(6)} ${seconds(times[method].at(-1)!, 1)}`);
    }
  }

  const medianMs = Object.fromEntries(chosen.map((m) => [m, median(times[m])]));
  // The goal: the image goes out of a registry once per child IDC and into every registry but a root once.
  // Headers, manifests, HEAD polls and the config's JSON add well under 1%; a layer sent twice adds a sixth.
  const once = (method: string, nodesOf: Node[], image: BuiltImage) => {
    const near = (got: number, want: number) => Math.abs(got - want) < 0.01 * image.blobBytes;
    return bytes[method].every((round) => nodesOf.every((t) => near(round[t.name].egress, childrenOf(nodesOf, t.idc).length * image.blobBytes) && near(round[t.name].ingress, t.parent ? image.blobBytes : 0)));
  };
  const imageMs = (image: BuiltImage) => (image.blobBytes / link.bytesPerSecond) * 1000;
  const result: Record<string, unknown> = { link: { mibPerSecond: link.bytesPerSecond / 2 ** 20, rttMs: link.rttMs }, runs, medianMs, timesMs: times, idcMs, linkBytes: bytes };
  const lines: string[] = [];
  if (images.tree) {
    const image = images.tree;
    const floor = { berth: pipelinedFloorMs(tree, 'master', imageMs(image), imageMs(image) / shapes.tree.layers), star: treeTargets.length * imageMs(image) };
    const carriesOnce = once('berth', tree, image);
    result.tree = {
      image: { bytes: image.blobBytes, layers: shapes.tree.layers },
      linkFloorMs: floor,
      berthOverStar: medianMs.berth / medianMs.star,
      berthOverSerial: medianMs.berth / medianMs.serial,
      berthCarriesImageOncePerLink: carriesOnce,
    };
    const cell = (b: LinkBytes) => `${mb(b.egress)}/${mb(b.ingress)}`.padStart(11);
    lines.push(
      `tree: ${mb(image.blobBytes)} MB in ${shapes.tree.layers} layers onto 6 registries`,
      `  median       berth ${seconds(medianMs.berth, 1)}   serial ${seconds(medianMs.serial, 1)}   star ${seconds(medianMs.star, 1)}`,
      `  link floor   berth ${seconds(floor.berth, 1)}   star and serial ${seconds(floor.star, 1)}   (the busiest links, layers passed on as they land)`,
      `  berth/star   ${(medianMs.berth / medianMs.star).toFixed(3)}   (goal <= 0.5)     berth/serial ${(medianMs.berth / medianMs.serial).toFixed(3)}`,
      `  MB over each registry's link, out/in, round 1:`,
      `          ${tree.map((t) => t.name.padStart(11)).join('')}`,
      ...methods.tree.map((m) => `  ${m.padEnd(8)}${tree.map((t) => cell(bytes[m][0][t.name])).join('')}`),
      `  goal    ${tree.map((t) => cell({ egress: childrenOf(tree, t.idc).length * image.blobBytes, ingress: t.parent ? image.blobBytes : 0 })).join('')}`,
      `  berth per IDC, round 1: ${Object.entries(idcMs.berth[0])
        .map(([idc, ms]) => `${idc} ${seconds(ms, 1)}`)
        .join(', ')}`,
      `  berth carries the image once over every inter-IDC link, every round: ${carriesOnce ? 'yes' : 'NO'}`,
    );
  }
  if (images.chain) {
    const image = images.chain;
    const carriesOnce = once('chain', chain, image);
    const floorMs = pipelinedFloorMs(chain, 'chain-0', imageMs(image), imageMs(image) / shapes.chain.layers);
    result.chain = { image: { bytes: image.blobBytes, layers: shapes.chain.layers }, linkFloorMs: floorMs, chainOverSingle: medianMs.chain / medianMs.single, carriesImageOncePerLink: carriesOnce };
    lines.push(
      `chain: ${mb(image.blobBytes)} MB in ${shapes.chain.layers} layers down 3 links, against 1 link`,
      `  median        chain ${seconds(medianMs.chain, 1)}   single link ${seconds(medianMs.single, 1)}   (floors ${seconds(floorMs, 1)} and ${seconds(imageMs(image), 1)})`,
      `  chain/single  ${(medianMs.chain / medianMs.single).toFixed(3)}   (goal <= 1.6)`,
      `  per IDC, round 1: ${Object.entries(idcMs.chain[0])
        .map(([idc, ms]) => `${idc} ${seconds(ms, 1)}`)
        .join(', ')}`,
      `  the image once over every link, every round: ${carriesOnce ? 'yes' : 'NO'}`,
    );
  }
  result.machine = watch();
  const written = writeResult('distribute', result);
  console.log(`\nlinks ${link.bytesPerSecond / 2 ** 20} MiB/s each way, RTT ${link.rttMs} ms; ${runs} rounds\n${lines.join('\n')}\nwritten to ${written}`);
}

runBench(main, cleanups);

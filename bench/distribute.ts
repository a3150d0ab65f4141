// `npm run bench -- distribute`: an image of >= 300 MB from the master IDC onto the 6 other registries of a
// 3-level IDC tree (master -> idc-a, idc-b; each of those -> two sub-IDCs), every registry behind an emulated WAN
// uplink (bench/wan-link.ts). BENCH_RUNS interleaved rounds of three methods, each into fresh empty registries:
// berth's distributeImage over the tree; serial skopeo copies from the master, one after another (Harbor's
// replication); the same copies all at once (a star). Prints medians, ratios and the bytes over each link;
// writes bench/results/distribute.json.
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { freePort, stopAll } from '../embedded/processes.ts';
import { startTemporalDevServer } from '../embedded/temporal-dev-server.ts';
import { testApi } from '../test/harness/api.ts';
import { startedRegistry, tempDir, testConfig, type TestRegistry } from '../test/harness/berth.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo } from '../test/harness/oci-layout.ts';
import type { distributeImage, DistributeImageResult } from '../workflows/distribute-image.ts';
import { startWorkers } from '../workers/run.ts';
import { startWanLinks, type LinkBytes } from './wan-link.ts';

const run = promisify(execFile);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const layerMiB = Number(process.env.BENCH_LAYER_MIB ?? 80);
const layers = 4;
const link = { bytesPerSecond: Number(process.env.BENCH_LINK_MIB_S ?? 40) * 2 ** 20, rttMs: Number(process.env.BENCH_LINK_RTT_MS ?? 20) };
const repository = 'bench/app';
const tag = 'v1';
// Registry names differ from IDC names: berth.yaml resolves either.
const tree = [
  { name: 'hub', idc: 'master' },
  { name: 'a', idc: 'idc-a', parent: 'master' },
  { name: 'b', idc: 'idc-b', parent: 'master' },
  { name: 'a1', idc: 'sub-a1', parent: 'idc-a' },
  { name: 'a2', idc: 'sub-a2', parent: 'idc-a' },
  { name: 'b1', idc: 'sub-b1', parent: 'idc-b' },
  { name: 'b2', idc: 'sub-b2', parent: 'idc-b' },
];
const childrenOf = (idc: string) => tree.filter((t) => t.parent === idc);
/** In images: what the busiest link below `idc` must send, level after level (an IDC's children start once it has the image). */
const treeFloor = (idc: string): number => childrenOf(idc).length + Math.max(0, ...childrenOf(idc).map((c) => treeFloor(c.idc)));
const methods = ['berth', 'serial', 'star'] as const;
type Method = (typeof methods)[number];

// Closed when the bench ends, however it ends: workers left polling would keep the process alive.
const cleanups: (() => Promise<unknown>)[] = [];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (bytes: number) => (bytes / 1e6).toFixed(0);

async function main() {
  console.log(`building a ${layers * layerMiB} MiB image of ${layers} layers...`);
  const image = await buildOciLayout(tempDir('bench-layout'), tag, [{ os: 'linux', architecture: 'amd64', layers: Array.from({ length: layers }, () => ({ size: layerMiB << 20 })) }]);
  const registries: Record<string, TestRegistry> = {};
  for (const { name } of tree) registries[name] = await startedRegistry(name);
  const [master, ...targets] = tree.map((t) => registries[t.name]);
  // The image arrives at the master from its own IDC, not over the WAN.
  await pushWithSkopeo(image, master, repository);
  const links = await startWanLinks(Object.fromEntries(tree.map((t) => [t.name, registries[t.name].url])), link);
  cleanups.push(links.close);
  const across = (name: string) => ({ ...registries[name], url: links.urls[name] });

  const dir = tempDir('bench-temporal');
  const temporal = await startTemporalDevServer({ port: await freePort(), headless: true, dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'temporal.log') });
  const connection = await Connection.connect({ address: temporal.address });
  cleanups.push(() => connection.close());
  const client = new Client({ connection });
  const { config } = testConfig('bench-distribute', temporal.address, tree.map((t) => ({ registry: registries[t.name], idc: t.idc, parent: t.parent, url: links.urls[t.name] })));
  const workers = await startWorkers(config);
  cleanups.push(workers.shutdown);
  const api = await testApi(config, client);
  cleanups.push(api.close);

  const skopeoCopy = async (target: string) => {
    const [from, to] = [across('hub'), across(target)];
    await run('skopeo', [
      'copy', '--all', '--preserve-digests', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false',
      '--src-creds', `${from.username}:${from.password}`, '--dest-creds', `${to.username}:${to.password}`,
      `docker://${new URL(from.url).host}/${repository}:${tag}`, `docker://${new URL(to.url).host}/${repository}:${tag}`,
    ]);
  };
  const targetNames = tree.slice(1).map((t) => t.name);
  // How long each IDC's copy took, per berth round: a sub-IDC's starts when its parent IDC has the image.
  const berthIdcMs: Record<string, number>[] = [];
  const copiers: Record<Method, () => Promise<void>> = {
    async berth() {
      const res = await api.inject({ method: 'POST', url: '/v1/distributions', payload: { image: `${repository}:${tag}` } });
      if (res.statusCode !== 202) throw new Error(`POST /v1/distributions: ${res.statusCode} ${res.body}`);
      const result: DistributeImageResult = await client.workflow.getHandle<typeof distributeImage>(res.json().workflowId, res.json().runId).result();
      berthIdcMs.push(Object.fromEntries(Object.entries(result).map(([idc, r]) => [idc, r.durationMs!])));
    },
    async serial() {
      for (const t of targetNames) await skopeoCopy(t);
    },
    async star() {
      await Promise.all(targetNames.map(skopeoCopy));
    },
  };

  const times: Record<Method, number[]> = { berth: [], serial: [], star: [] };
  const bytes: Record<Method, Record<string, LinkBytes>[]> = { berth: [], serial: [], star: [] };
  for (let i = 0; i < runs; i++) {
    for (const method of methods) {
      // Emptied in place rather than restarted: another process could take a registry's port meanwhile. The
      // registries are configured without a cache, so an empty storage directory is an empty registry.
      for (const r of targets) {
        rmSync(join(r.dataDir, 'storage'), { recursive: true });
        mkdirSync(join(r.dataDir, 'storage'));
      }
      await links.take();
      const started = performance.now();
      await copiers[method]();
      times[method].push(performance.now() - started);
      bytes[method].push(await links.take());
      // Checked directly on each registry, not across its link: the check is not part of the method.
      for (const r of targets) {
        if ((await digestWithSkopeo(r, `${repository}:${tag}`)) !== image.digest) throw new Error(`${method}: ${r.name} does not serve ${image.digest}`);
      }
      console.log(`round ${i + 1}/${runs} ${method.padEnd(6)} ${(times[method].at(-1)! / 1000).toFixed(1)} s`);
    }
  }
  // The goal: the image goes out of a registry once per child IDC and into every registry but the master once.
  const expected = Object.fromEntries(
    tree.map((t) => [t.name, { egress: childrenOf(t.idc).length * image.blobBytes, ingress: t.parent ? image.blobBytes : 0 }]),
  ) as Record<string, LinkBytes>;
  // Headers, manifests and the config's JSON add well under 1%; a layer sent twice adds a quarter image.
  const near = (got: number, want: number) => Math.abs(got - want) < 0.01 * image.blobBytes;
  const once = bytes.berth.every((round) => tree.every(({ name }) => near(round[name].egress, expected[name].egress) && near(round[name].ingress, expected[name].ingress)));
  const medianMs = Object.fromEntries(methods.map((m) => [m, median(times[m])])) as Record<Method, number>;
  // What the links alone allow: the star and the serial copies send every image out of the master.
  const imageMs = (image.blobBytes / link.bytesPerSecond) * 1000;
  const linkFloorMs: Record<Method, number> = { berth: treeFloor('master') * imageMs, serial: targets.length * imageMs, star: targets.length * imageMs };
  const result = {
    image: { bytes: image.blobBytes, layers, digest: image.digest },
    link: { mibPerSecond: link.bytesPerSecond / 2 ** 20, rttMs: link.rttMs },
    runs,
    medianMs,
    linkFloorMs,
    ratios: { berthOverStar: medianMs.berth / medianMs.star, berthOverSerial: medianMs.berth / medianMs.serial },
    berthCarriesImageOncePerLink: once,
    timesMs: times,
    berthIdcMs,
    linkBytes: bytes,
    machine: { cores: cpus().length, node: process.version },
  };
  mkdirSync(fileURLToPath(new URL('./results/', import.meta.url)), { recursive: true });
  writeFileSync(fileURLToPath(new URL('./results/distribute.json', import.meta.url)), JSON.stringify(result, null, 2));

  const cell = (b: LinkBytes) => `${mb(b.egress)}/${mb(b.ingress)}`.padStart(11);
  console.log(`
image           ${mb(image.blobBytes)} MB in ${layers} layers onto 6 registries; links ${result.link.mibPerSecond} MiB/s each way, RTT ${link.rttMs} ms; ${runs} rounds
median          berth ${(medianMs.berth / 1000).toFixed(1)} s   serial ${(medianMs.serial / 1000).toFixed(1)} s   star ${(medianMs.star / 1000).toFixed(1)} s
link floor      berth ${(linkFloorMs.berth / 1000).toFixed(1)} s   serial ${(linkFloorMs.serial / 1000).toFixed(1)} s   star ${(linkFloorMs.star / 1000).toFixed(1)} s   (the image's bytes over the busiest link)
berth/star      ${result.ratios.berthOverStar.toFixed(3)}   (goal <= 0.5)
berth/serial    ${result.ratios.berthOverSerial.toFixed(3)}
MB over each registry's link, out/in, round 1:
        ${tree.map((t) => t.name.padStart(11)).join('')}
${methods.map((m) => `${m.padEnd(8)}${tree.map((t) => cell(bytes[m][0][t.name])).join('')}`).join('\n')}
goal    ${tree.map((t) => cell(expected[t.name])).join('')}
berth per IDC, round 1: ${Object.entries(berthIdcMs[0]).map(([idc, ms]) => `${idc} ${(ms / 1000).toFixed(1)} s`).join(', ')}
berth carries the image once over every inter-IDC link, every round: ${once ? 'yes' : 'NO'}
written to bench/results/distribute.json`);
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const close of cleanups.reverse()) await close().catch(() => undefined);
    await stopAll();
  });

// `npm run bench` (replicate): copy a >= 400 MB image of 5 layers from one local registry to another, 5 runs of
// each copier, interleaved, each into a fresh empty registry and from a fresh process: berth's copier,
// `skopeo copy --all`, and a raw streaming GET|PUT of the same blobs (the floor). Prints medians and ratios; writes bench/results/replicate.json.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { configSchema } from '../config/schema.ts';
import { stopAll } from '../embedded/processes.ts';
import { startedRegistry, tempDir, type TestRegistry } from '../test/harness/berth.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo } from '../test/harness/oci-layout.ts';
import type { CopyJob } from './copy-process.ts';
import type { RawEndpoint } from './raw-copy.ts';

const run = promisify(execFile);
const runs = Number(process.env.BENCH_RUNS ?? 5);
const layerMiB = Number(process.env.BENCH_LAYER_MIB ?? 82);
const repository = 'bench/app';
const tag = 'v1';
// The same settings berth ships with.
const { blobConcurrency: concurrency, chunkSizeMiB } = configSchema.shape.copy.parse(undefined);

const endpoint = (r: TestRegistry): RawEndpoint => ({ url: r.url, username: r.username!, password: r.password! });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Runs berth's copier or the raw copy in a fresh process, as skopeo runs in one. */
async function inProcess(copier: CopyJob['copier'], source: TestRegistry, target: TestRegistry, blobs: string[]) {
  const job: CopyJob = { copier, source: endpoint(source), target: endpoint(target), repository, reference: tag, blobs, concurrency, chunkSize: chunkSizeMiB << 20 };
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./copy-process.ts', import.meta.url)), JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`${copier} copy exited with ${code}`);
  return JSON.parse(out) as { ms: number; rssGrowth: number };
}

async function skopeo(source: TestRegistry, target: TestRegistry) {
  const started = performance.now();
  await run('skopeo', [
    'copy', '--all', '--preserve-digests', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false',
    '--src-creds', `${source.username}:${source.password}`, '--dest-creds', `${target.username}:${target.password}`,
    `docker://${new URL(source.url).host}/${repository}:${tag}`, `docker://${new URL(target.url).host}/${repository}:${tag}`,
  ]);
  return { ms: performance.now() - started };
}

async function main() {
  console.log(`building a ${5 * layerMiB} MiB image of 5 layers...`);
  const image = await buildOciLayout(tempDir('bench-layout'), tag, [{ os: 'linux', architecture: 'amd64', layers: Array.from({ length: 5 }, () => ({ size: layerMiB << 20 })) }]);
  const source = await startedRegistry('bench-source');
  await pushWithSkopeo(image, source, repository);
  const manifest = JSON.parse(readFileSync(`${image.layoutDir}/blobs/sha256/${image.digest.slice(7)}`, 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  const blobs = [manifest.config.digest, ...manifest.layers.map((l) => l.digest)];

  const times: Record<'berth' | 'skopeo' | 'raw', number[]> = { berth: [], skopeo: [], raw: [] };
  const rss: number[] = [];
  for (let i = 0; i < runs; i++) {
    for (const tool of ['berth', 'skopeo', 'raw'] as const) {
      const target = await startedRegistry(`bench-target-${tool}-${i}`);
      try {
        if (tool === 'skopeo') {
          times.skopeo.push((await skopeo(source, target)).ms);
        } else {
          const r = await inProcess(tool, source, target, blobs);
          times[tool].push(r.ms);
          if (tool === 'berth') rss.push(r.rssGrowth);
        }
        if (tool !== 'raw' && (await digestWithSkopeo(target, `${repository}:${tag}`)) !== image.digest) throw new Error(`${tool}: digest mismatch on the target`);
      } finally {
        await target.stop();
        rmSync(target.dataDir, { recursive: true, force: true });
      }
      console.log(`run ${i + 1}/${runs} ${tool.padEnd(6)} ${(times[tool].at(-1)! / 1000).toFixed(2)} s`);
    }
  }
  const result = {
    image: { bytes: image.blobBytes, layers: 5, digest: image.digest },
    runs,
    concurrency,
    chunkSizeMiB,
    medianMs: { berth: median(times.berth), skopeo: median(times.skopeo), raw: median(times.raw) },
    throughputMBps: {
      berth: image.blobBytes / 1e6 / (median(times.berth) / 1000),
      skopeo: image.blobBytes / 1e6 / (median(times.skopeo) / 1000),
      raw: image.blobBytes / 1e6 / (median(times.raw) / 1000),
    },
    ratios: { berthOverSkopeo: median(times.berth) / median(times.skopeo), berthOverRaw: median(times.berth) / median(times.raw) },
    berthRssGrowthMB: { median: median(rss) / 1e6, max: Math.max(...rss) / 1e6 },
    timesMs: times,
    machine: { cores: cpus().length, node: process.version },
  };
  mkdirSync(fileURLToPath(new URL('./results/', import.meta.url)), { recursive: true });
  writeFileSync(fileURLToPath(new URL('./results/replicate.json', import.meta.url)), JSON.stringify(result, null, 2));
  console.log(`
image           ${(image.blobBytes / 1e6).toFixed(0)} MB in 5 layers, ${runs} runs each, berth concurrency ${concurrency}
median          berth ${(result.medianMs.berth / 1000).toFixed(2)} s   skopeo ${(result.medianMs.skopeo / 1000).toFixed(2)} s   raw ${(result.medianMs.raw / 1000).toFixed(2)} s
berth/skopeo    ${result.ratios.berthOverSkopeo.toFixed(3)}   (goal <= 1.0)
berth/raw       ${result.ratios.berthOverRaw.toFixed(3)}   (goal <= 1.15)
berth RSS growth during the copy: median ${result.berthRssGrowthMB.median.toFixed(1)} MB, max ${result.berthRssGrowthMB.max.toFixed(1)} MB (goal < 100 MB)
written to bench/results/replicate.json`);
  await source.stop();
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => stopAll());

// One copy in a process of its own, so that each copier starts equally cold and its memory is measured alone.
// Prints one JSON line. Usage: node --import tsx bench/copy-process.ts '<json CopyJob>'
import { readFileSync } from 'node:fs';
import { RegistryClient } from '../activities/registry/client.ts';
import { copyImage } from '../activities/registry/copy-image.ts';
import { rawCopyBlobs, type RawEndpoint } from './raw-copy.ts';

export interface CopyJob {
  copier: 'berth' | 'raw';
  source: RawEndpoint;
  target: RawEndpoint;
  repository: string;
  reference: string;
  /** For the raw copier: the blobs to copy. */
  blobs: string[];
  concurrency: number;
  chunkSize: number;
}

/** Peak resident set size so far (VmHWM), in bytes. */
function peakRss(): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
}

const job = JSON.parse(process.argv[2]) as CopyJob;
const client = (name: string, e: RawEndpoint) => new RegistryClient({ name, baseUrl: e.url, credentials: e, chunkSize: job.chunkSize });
const source = client('source', job.source);
const target = client('target', job.target);
await source.ping();
await target.ping();
const rssBefore = process.memoryUsage().rss;
const started = performance.now();
if (job.copier === 'berth') {
  await copyImage({ source, target, sourceRepository: job.repository, targetRepository: job.repository, reference: job.reference, concurrency: job.concurrency });
} else {
  await rawCopyBlobs(job.source, job.target, job.repository, job.blobs, job.concurrency);
}
const ms = performance.now() - started;
console.log(JSON.stringify({ ms, rssGrowth: peakRss() - rssBefore }));
await Promise.all([source.close(), target.close()]);

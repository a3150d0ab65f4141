// One berth copy in a process of its own, so its memory can be measured alone. Prints one JSON line.
// Usage: node --import tsx bench/berth-copy-process.ts <json: {source, target, repository, reference, concurrency, chunkSize}>
import { readFileSync } from 'node:fs';
import { RegistryClient } from '../activities/registry/client.ts';
import { copyImage } from '../activities/registry/copy-image.ts';

interface Endpoint {
  url: string;
  username: string;
  password: string;
}
const args = JSON.parse(process.argv[2]) as { source: Endpoint; target: Endpoint; repository: string; reference: string; concurrency: number; chunkSize: number };

/** Peak resident set size so far (VmHWM), in bytes. */
function peakRss(): number {
  const kb = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1];
  return Number(kb) * 1024;
}

const client = (name: string, e: Endpoint) => new RegistryClient({ name, baseUrl: e.url, credentials: e, chunkSize: args.chunkSize });
const source = client('source', args.source);
const target = client('target', args.target);
await source.ping();
await target.ping();
const rssBefore = process.memoryUsage().rss;
const peakBefore = peakRss();
const started = performance.now();
const result = await copyImage({ source, target, sourceRepository: args.repository, targetRepository: args.repository, reference: args.reference, concurrency: args.concurrency });
const ms = performance.now() - started;
console.log(JSON.stringify({ ms, bytes: result.bytesCopied, digest: result.digest, rssBefore, rssPeak: Math.max(peakRss(), peakBefore), rssGrowth: peakRss() - rssBefore }));
await Promise.all([source.close(), target.close()]);

import { lookup } from 'node:dns/promises';
import { readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { HaGroup } from '../../../config/load.ts';
import type { EndpointTarget, Push, TrafficEndpoint } from '../endpoint.ts';
import { parseUpstreamBlock, refusedHeader, registryHeader, upstreamBlock } from './config.ts';

/** How long a reloaded nginx may take before requests reach the new upstream. */
const switchTimeoutMs = 10_000;

/**
 * nginx on this worker's machine: berth rewrites the included upstream file (atomically) and sends nginx's
 * master SIGHUP, which starts workers with the new upstream and lets the old ones finish their requests.
 */
export function nginxEndpoint(group: HaGroup): TrafficEndpoint {
  const { upstreamFile, pidFile, pushLog } = group.endpoint.nginx;
  const url = group.endpoint.url;
  const write = async (text: string) => {
    const temp = `${upstreamFile}.berth-tmp`;
    await writeFile(temp, text);
    await rename(temp, upstreamFile);
  };
  const reload = async () => {
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`nginx pid file ${pidFile} holds no pid`);
    try {
      process.kill(pid, 'SIGHUP');
    } catch (err) {
      throw new Error(`cannot reload nginx: its pid file ${pidFile} names process ${pid} (${(err as NodeJS.ErrnoException).code})`, { cause: err });
    }
  };
  return {
    async configured() {
      const text = await readFile(upstreamFile, 'utf8').catch(() => undefined);
      return text === undefined ? undefined : parseUpstreamBlock(text);
    },

    serving: (signal) => servedBy(url, signal),

    async switchTo(target, signal) {
      const previous = await readFile(upstreamFile, 'utf8').catch(() => undefined);
      await write(upstreamBlock(group.name, target));
      try {
        await reload();
        // nginx answers a bad config on reload by keeping the old one: only traffic arriving there proves the switch.
        const deadline = Date.now() + switchTimeoutMs;
        let seen: Partial<EndpointTarget> | undefined;
        while (Date.now() < deadline) {
          seen = await servedBy(url, signal);
          if (seen && (await isTarget(seen, target))) return;
          await sleep(100, undefined, { signal });
        }
        if (seen?.upstream && !seen.registry) throw new Error(`nginx for ${group.name} answers without X-Berth-Registry: its server block predates berth 0.2 (see the README)`);
        const now = seen ? `${seen.registry} (${seen.upstream}${seen.writesRefused ? ', writes refused' : ''})` : 'nothing';
        throw new Error(`nginx for ${group.name} still sends traffic to ${now} ${switchTimeoutMs / 1000} s after the switch to ${target.registry}${target.writesRefused ? ' (writes refused)' : ''}; see its error log`);
      } catch (err) {
        // What nginx serves and what its file says must stay one: a later reload would otherwise move traffic.
        await (previous === undefined ? unlink(upstreamFile) : write(previous)).catch(() => undefined);
        await reload().catch(() => undefined);
        throw new Error(`${(err as Error).message}; ${upstreamFile} is back as it was`, { cause: err });
      }
    },

    async pushesSince(sinceMs) {
      if (!pushLog) return null;
      const text = await readFile(pushLog, 'utf8').catch(() => '');
      return text.split('\n').flatMap((line) => {
        const push = parsePushLine(line);
        return push && push.at >= sinceMs ? [push] : [];
      });
    },
  };
}

const header = (h: string | string[] | undefined) => (Array.isArray(h) ? h[0] : h);

/** What answers through the endpoint: the registry nginx names, the address it used, and whether writes are refused. */
async function servedBy(endpointUrl: string, signal?: AbortSignal): Promise<Partial<EndpointTarget> | undefined> {
  try {
    const read = await request(`${endpointUrl}/v2/`, { signal, headersTimeout: 2000 });
    await read.body.dump();
    // A 502 means nginx reached no upstream: nothing serves.
    if (read.statusCode >= 500) return undefined;
    // A write that never reaches a registry: DELETE /v2/ is refused by the fence, and by every registry otherwise.
    const write = await request(`${endpointUrl}/v2/`, { method: 'DELETE', signal, headersTimeout: 2000 });
    await write.body.dump();
    return { registry: header(read.headers[registryHeader]), upstream: header(read.headers['x-berth-upstream']), writesRefused: header(write.headers[refusedHeader]) === 'refused' };
  } catch {
    return undefined;
  }
}

/** The registry, fence and address nginx reports are the target's (nginx reports the address a name resolved to). */
async function isTarget(seen: Partial<EndpointTarget>, target: EndpointTarget): Promise<boolean> {
  if (seen.registry !== target.registry || seen.writesRefused !== target.writesRefused || !seen.upstream) return false;
  if (seen.upstream === target.upstream) return true;
  const split = (hostPort: string) => {
    const i = hostPort.lastIndexOf(':');
    return { host: hostPort.slice(0, i).replace(/^\[|\]$/g, ''), port: hostPort.slice(i + 1) };
  };
  const want = split(target.upstream);
  const got = split(seen.upstream);
  if (want.port !== got.port) return false;
  const addresses = await lookup(want.host, { all: true }).catch(() => []);
  return addresses.some((a) => a.address === got.host);
}

/** One line of the push log: a manifest PUT that the registry accepted (201). */
function parsePushLine(line: string): Push | undefined {
  if (!line.trim()) return undefined;
  let entry: { msec?: string; method?: string; uri?: string; status?: string; digest?: string };
  try {
    entry = JSON.parse(line);
  } catch {
    return undefined;
  }
  const match = entry.uri?.match(/^\/v2\/(.+)\/manifests\/([^/]+)$/);
  if (entry.method !== 'PUT' || entry.status !== '201' || !match || !entry.digest?.startsWith('sha256:')) return undefined;
  return { repository: match[1], reference: match[2], digest: entry.digest, at: Math.round(Number(entry.msec) * 1000) };
}

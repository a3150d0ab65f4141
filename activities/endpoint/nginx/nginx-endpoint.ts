import { readFile, rename, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { HaGroup } from '../../../config/load.ts';
import type { Push, TrafficEndpoint } from '../endpoint.ts';
import { parseUpstreamBlock, upstreamBlock } from './config.ts';

/** How long a reloaded nginx may take before requests reach the new upstream. */
const switchTimeoutMs = 10_000;

/**
 * nginx on this worker's machine: berth rewrites the included upstream file (atomically) and sends nginx's
 * master SIGHUP, which starts workers with the new upstream and lets the old ones finish their requests.
 */
export function nginxEndpoint(group: HaGroup): TrafficEndpoint {
  const { upstreamFile, pidFile, pushLog } = group.endpoint.nginx;
  return {
    async current() {
      return parseUpstreamBlock(await readFile(upstreamFile, 'utf8').catch(() => ''));
    },

    async switchTo(upstream, signal) {
      const temp = `${upstreamFile}.berth-tmp`;
      await writeFile(temp, upstreamBlock(group.name, upstream));
      await rename(temp, upstreamFile);
      const pid = Number((await readFile(pidFile, 'utf8')).trim());
      if (!Number.isInteger(pid) || pid <= 0) throw new Error(`nginx pid file ${pidFile} holds no pid`);
      process.kill(pid, 'SIGHUP');
      // nginx answers a bad config on reload by keeping the old one: only traffic arriving there proves the switch.
      const deadline = Date.now() + switchTimeoutMs;
      let seen: string | undefined;
      while (Date.now() < deadline) {
        seen = await servedBy(group.endpoint.url, signal);
        if (seen !== undefined && sameUpstream(seen, upstream)) return;
        await sleep(100, undefined, { signal });
      }
      throw new Error(`nginx for ${group.name} still sends traffic to ${seen ?? 'nothing'} ${switchTimeoutMs / 1000} s after the switch to ${upstream}; see its error log`);
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

/** The upstream that served a request through the endpoint (nginx's X-Berth-Upstream), if any answered. */
async function servedBy(endpointUrl: string, signal?: AbortSignal): Promise<string | undefined> {
  try {
    const res = await request(`${endpointUrl}/v2/`, { signal, headersTimeout: 2000 });
    await res.body.dump();
    const h = res.headers['x-berth-upstream'];
    // A 502 means nginx reached no upstream: the header names the one it tried.
    return res.statusCode < 500 ? (Array.isArray(h) ? h[0] : h) : undefined;
  } catch {
    return undefined;
  }
}

/** nginx reports the resolved address: a name in the config matches by port. */
function sameUpstream(reported: string, configured: string): boolean {
  if (reported === configured) return true;
  const port = (hostPort: string) => hostPort.slice(hostPort.lastIndexOf(':') + 1);
  return !/^[\d.]+:\d+$/.test(configured) && port(reported) === port(configured);
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

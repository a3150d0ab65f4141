import { ApplicationFailure, Context } from '@temporalio/activity';
import { findRegistry, type BerthConfig, type HaGroup } from '../config/load.ts';
import type { EndpointView, ProbeResult, RpoEntry, RpoMeasurement } from '../contracts/ha.ts';
import { recordFailover } from '../metrics/registry.ts';
import { fenceSyncSchedules } from '../schedules/sync-fences.ts';
import { trafficEndpoint } from './endpoint/index.ts';
import { RegistryClient } from './registry/client.ts';
import type { RegistryFence } from './registry/adapters/adapter.ts';
import type { RegistryAdapters } from './registry/adapters/index.ts';
import { resolveCredentials } from './registry/credentials.ts';
import { referredDigest } from './registry/referrers.ts';
import { asTemporalFailure } from './failures.ts';

/** The RPO list kept in events and the guard's state: bounded, the total says how many more there were. */
const rpoListLimit = 100;
/** Manifests compared at once by the RPO scan, and how long it may read before it reports what it saw. */
const rpoConcurrency = 8;
const rpoScanLimitMs = 10 * 60_000;

/** Activities of registry HA: probes from a vantage point, and the failover steps on the endpoint and registries. */
export function createHaActivities(config: BerthConfig, registries: RegistryAdapters) {
  const group = (name: string): HaGroup => {
    const g = config.haGroups.find((x) => x.name === name);
    if (!g) throw ApplicationFailure.nonRetryable(`HA group "${name}" is not in this worker's config`, 'UnknownHaGroup');
    return g;
  };
  const clientFor = (registry: string) => registries(registry).client();
  /** `host:port` of a registry, with the scheme's default port spelt out: nginx would take a bare https host for port 80. */
  const upstreamOf = (registry: string) => {
    const url = new URL(findRegistry(config, registry)!.url);
    return `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
  };
  /** The group's registry an endpoint names, by name (berth 0.2 files) or by its address (older ones). */
  const sideOf = (g: HaGroup, seen: { registry?: string; upstream?: string } | undefined) => [g.primary, g.secondary].find((r) => r === seen?.registry || (!seen?.registry && seen?.upstream === upstreamOf(r)));
  /** Whether a registry serves images within the timeout, as its kind tells (its adapter's health). */
  const probe = async (registry: string, timeoutMs: number): Promise<ProbeResult> => {
    const started = Date.now();
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const { up, detail } = await registries(registry).health(signal);
      const ms = Date.now() - started;
      return detail === undefined ? { up, ms } : { up, ms, detail };
    } catch (err) {
      // A registry that answers, even refusing our login, is up: availability is what is measured here. (A login
      // this worker cannot even read is no answer from the registry: that vantage point sees it down.)
      const status = (err as { opts?: { status?: number } }).opts?.status;
      if (status === 401 || status === 403) return { up: true, ms: Date.now() - started };
      return { up: false, ms: Date.now() - started, detail: signal.aborted ? `no answer within ${timeoutMs} ms` : (err as Error).message };
    }
  };

  return {
    /** Probes registries from the IDC this activity runs in: one vantage point's view. */
    async probeRegistries({ registries, timeoutMs }: { registries: string[]; timeoutMs: number }): Promise<Record<string, ProbeResult>> {
      return Object.fromEntries(await Promise.all(registries.map(async (r) => [r, await probe(r, timeoutMs)] as const)));
    },

    /** Fences a registry that stops being the primary with its own fence (Harbor's read-only mode), if its kind has one. */
    async fenceRegistry({ registry, readOnly }: { registry: string; readOnly: boolean }): Promise<RegistryFence> {
      return asTemporalFailure(() => registries(registry).fence(readOnly, AbortSignal.timeout(10_000)));
    },

    /** Puts the group's fence on berth's sync rules (no rule writes to the fenced primary), or lifts it. */
    async fenceSyncRules({ group: name, fenced }: { group: string; fenced: boolean }): Promise<{ rules: string[] }> {
      const g = group(name);
      const fence = { group: g.name, registry: g.primary, serving: g.secondary };
      return { rules: await asTemporalFailure(() => fenceSyncSchedules(Context.current().client, config, fence, fenced)) };
    },

    /**
     * What the old primary holds that the secondary does not: read from the primary if it answers (tag by tag,
     * a heartbeat each, for at most 10 minutes), else from the endpoint's push log. Runs beside the endpoint.
     */
    async measureRpo({ group: name, primary, secondary, timeoutMs }: { group: string; primary: string; secondary: string; timeoutMs: number }): Promise<RpoMeasurement> {
      const ctx = Context.current();
      const signal = ctx.cancellationSignal;
      const target = clientFor(secondary);
      return asTemporalFailure(async () => {
        const missing: RpoEntry[] = [];
        let total = 0;
        const note = (image: string, digest: string) => {
          total++;
          if (missing.length < rpoListLimit) missing.push({ image, digest });
        };
        if ((await probe(primary, timeoutMs)).up) {
          const source = clientFor(primary);
          const deadline = Date.now() + rpoScanLimitMs;
          let scanned = 0;
          for await (const page of source.listRepositories(1000, signal)) {
            for (const repository of page) {
              for await (const tags of source.listTags(repository, 1000, signal)) {
                // Referrer tags travel with their subject: not images of their own.
                const queue = tags.filter((t) => referredDigest(t) === undefined);
                const compare = async () => {
                  for (let tag = queue.shift(); tag !== undefined; tag = queue.shift()) {
                    const [digest, there] = await Promise.all([source.headManifest(repository, tag, signal), target.headManifest(repository, tag, signal)]);
                    if (digest && digest !== there) note(`${repository}:${tag}`, digest);
                    ctx.heartbeat({ tagsScanned: ++scanned });
                  }
                };
                await Promise.all(Array.from({ length: rpoConcurrency }, compare));
                if (Date.now() > deadline) return { source: 'primary', missing, total, tagsScanned: scanned, partial: true };
              }
            }
          }
          return { source: 'primary', missing, total, tagsScanned: scanned };
        }
        const pushes = await trafficEndpoint(group(name)).pushesSince(0);
        if (!pushes) return { source: 'unknown', missing: [], total: 0 };
        // The last push of each tag is what clients expect to pull.
        const latest = new Map(pushes.map((p) => [`${p.repository}:${p.reference}`, p]));
        for (const [image, p] of latest) {
          if ((await target.headManifest(p.repository, p.reference, signal)) !== p.digest) note(image, p.digest);
          ctx.heartbeat();
        }
        return { source: 'push-log', missing, total };
      });
    },

    /**
     * Points the group's endpoint at a registry (writes refused, for a failback's final catch-up) and returns once
     * requests through it arrive there; on failure the endpoint is left as it was.
     */
    async switchEndpoint({ group: name, to, writesRefused = false }: { group: string; to: string; writesRefused?: boolean }): Promise<{ from?: string; to: string }> {
      const g = group(name);
      const endpoint = trafficEndpoint(g);
      const from = sideOf(g, await endpoint.configured());
      await endpoint.switchTo({ registry: to, upstream: upstreamOf(to), writesRefused }, Context.current().cancellationSignal);
      return { from, to };
    },

    /** Where the group's endpoint points: the registry answering through it, and the one its configuration names. */
    async readEndpoint({ group: name }: { group: string }): Promise<EndpointView> {
      const g = group(name);
      const endpoint = trafficEndpoint(g);
      const [serving, configured] = await Promise.all([endpoint.serving(Context.current().cancellationSignal), endpoint.configured()]);
      return { serving: sideOf(g, serving), configured: sideOf(g, configured), writesRefused: serving?.writesRefused ?? false };
    },

    /** Repositories pushed to through the endpoint since `sinceMs`, from its push log; null when it keeps none. */
    async pushedRepositories({ group: name, sinceMs }: { group: string; sinceMs: number }): Promise<string[] | null> {
      const pushes = await trafficEndpoint(group(name)).pushesSince(sinceMs);
      return pushes && [...new Set(pushes.map((p) => p.repository))].sort();
    },

    /** Pulls an image through the endpoint and checks it is the registry's own: the endpoint really serves it. */
    async verifyEndpointPull({ group: name, registry }: { group: string; registry: string }): Promise<{ image?: string; digest?: string }> {
      const g = group(name);
      const r = findRegistry(config, registry)!;
      const direct = clientFor(registry);
      // The registry behind the endpoint may name a token service on its own host: its credentials may go there.
      const trustedTokenRealms = [r.url, ...r.trustedTokenRealms];
      const through = new RegistryClient({ name: `${name} endpoint`, baseUrl: g.endpoint.url, credentials: resolveCredentials(registry, r.credentials), trustedTokenRealms });
      const signal = Context.current().cancellationSignal;
      // The last step of a failover (to the secondary) and of a failback (to the primary): where they are counted.
      const direction = registry === g.secondary ? 'failover' : 'failback';
      try {
        const verified = await asTemporalFailure(async () => {
          await through.ping(signal);
          for await (const page of direct.listRepositories(10, signal)) {
            for (const repository of page) {
              for await (const tags of direct.listTags(repository, 1, signal)) {
                if (!tags[0]) continue;
                const digest = (await through.getManifest(repository, tags[0], signal)).digest;
                const expected = await direct.headManifest(repository, tags[0], signal);
                if (digest !== expected) throw ApplicationFailure.nonRetryable(`${repository}:${tags[0]} through ${g.endpoint.url} is ${digest}, ${registry} has ${expected}`, 'EndpointMismatch');
                return { image: `${repository}:${tags[0]}`, digest };
              }
            }
          }
          return {};
        });
        recordFailover(name, direction, 'completed');
        return verified;
      } catch (err) {
        recordFailover(name, direction, 'failed');
        throw err;
      } finally {
        await through.close();
      }
    },
  };
}

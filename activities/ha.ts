import { ApplicationFailure, Context } from '@temporalio/activity';
import { findRegistry, type BerthConfig, type HaGroup } from '../config/load.ts';
import { recordFailover } from '../metrics/registry.ts';
import { trafficEndpoint } from './endpoint/index.ts';
import { RegistryClient } from './registry/client.ts';
import type { RegistryClients } from './registry/clients.ts';
import { resolveCredentials } from './registry/credentials.ts';
import { HarborClient } from './registry/harbor/client.ts';
import { asTemporalFailure } from './failures.ts';
import { compareTags, taggedDigests } from './sync/drift.ts';

export interface ProbeResult {
  up: boolean;
  ms: number;
  detail?: string;
}

export interface RpoEntry {
  image: string;
  digest: string;
}

export interface RpoMeasurement {
  /** How the RPO was found: by reading the old primary, or from the endpoint's push log when it cannot be read. */
  source: 'primary' | 'push-log' | 'unknown';
  /** Images the old primary has (or had pushed to it) that the secondary lacks at that digest: the first 100. */
  missing: RpoEntry[];
  /** How many there are in all. */
  total: number;
  /** Why the RPO is unknown, when it is. */
  error?: string;
}

/** The RPO list kept in events and the guard's state: bounded, the total says how many more there were. */
const rpoListLimit = 100;

/** Activities of registry HA: probes from a vantage point, and the failover steps on the endpoint and registries. */
export function createHaActivities(config: BerthConfig, clientFor: RegistryClients) {
  const group = (name: string): HaGroup => {
    const g = config.haGroups.find((x) => x.name === name);
    if (!g) throw ApplicationFailure.nonRetryable(`HA group "${name}" is not in this worker's config`, 'UnknownHaGroup');
    return g;
  };
  const harbor = (registry: string) => {
    const r = findRegistry(config, registry)!;
    return new HarborClient({ name: registry, baseUrl: r.url, credentials: resolveCredentials(registry, r.credentials) });
  };
  const isHarbor = (registry: string) => findRegistry(config, registry)?.kind === 'harbor';
  /** Whether a registry answers within the timeout: `/v2/` for distribution, `/api/v2.0/health` for Harbor. */
  const probe = async (registry: string, timeoutMs: number): Promise<ProbeResult> => {
    const started = Date.now();
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      if (isHarbor(registry)) {
        const h = harbor(registry);
        try {
          const health = await h.health(signal);
          const ms = Date.now() - started;
          return health.status === 'healthy' ? { up: true, ms } : { up: false, ms, detail: `Harbor reports ${health.status}` };
        } finally {
          await h.close();
        }
      }
      await clientFor(registry).ping(signal);
      return { up: true, ms: Date.now() - started };
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

    /** Fences a registry that stops being the primary: Harbor goes read-only; a plain registry is fenced by the switch. */
    async fenceRegistry({ registry, readOnly }: { registry: string; readOnly: boolean }): Promise<{ fenced: boolean; how: string }> {
      if (!isHarbor(registry)) return { fenced: false, how: 'a distribution registry is fenced by removing it from the endpoint' };
      const h = harbor(registry);
      try {
        await asTemporalFailure(() => h.setReadOnly(readOnly, AbortSignal.timeout(10_000)));
        return { fenced: readOnly, how: `Harbor read-only mode ${readOnly ? 'on' : 'off'}` };
      } finally {
        await h.close();
      }
    },

    /** What the old primary holds that the secondary does not: read from the primary if it answers, else the push log. */
    async measureRpo({ group: name, primary, secondary, timeoutMs }: { group: string; primary: string; secondary: string; timeoutMs: number }): Promise<RpoMeasurement> {
      const ctx = Context.current();
      const signal = ctx.cancellationSignal;
      const target = clientFor(secondary);
      return asTemporalFailure(async () => {
        if ((await probe(primary, timeoutMs)).up) {
          const source = clientFor(primary);
          const missing: RpoEntry[] = [];
          const all = () => true;
          for await (const page of source.listRepositories(1000, signal)) {
            for (const repository of page) {
              const drift = compareTags(repository, await taggedDigests(source, repository, 1000, all, signal), await taggedDigests(target, repository, 1000, all, signal), all);
              missing.push(...[...drift.missing, ...drift.different].map((m) => ({ image: `${repository}:${m.tag}`, digest: m.digest })));
              ctx.heartbeat();
            }
          }
          return { source: 'primary', missing: missing.slice(0, rpoListLimit), total: missing.length };
        }
        const pushes = await trafficEndpoint(group(name)).pushesSince(0);
        if (!pushes) return { source: 'unknown', missing: [], total: 0 };
        // The last push of each tag is what clients expect to pull.
        const latest = new Map(pushes.map((p) => [`${p.repository}:${p.reference}`, p]));
        const missing: RpoEntry[] = [];
        for (const [image, p] of latest) {
          if ((await target.headManifest(p.repository, p.reference, signal)) !== p.digest) missing.push({ image, digest: p.digest });
          ctx.heartbeat();
        }
        return { source: 'push-log', missing: missing.slice(0, rpoListLimit), total: missing.length };
      });
    },

    /** Points the group's endpoint at a registry and returns once traffic arrives there. */
    async switchEndpoint({ group: name, to }: { group: string; to: string }): Promise<{ from?: string; to: string }> {
      const endpoint = trafficEndpoint(group(name));
      const from = await endpoint.current();
      // With the scheme's default port spelt out: nginx would take a bare https host for port 80.
      const url = new URL(findRegistry(config, to)!.url);
      const upstream = `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
      await endpoint.switchTo(upstream, Context.current().cancellationSignal);
      return { from, to: upstream };
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

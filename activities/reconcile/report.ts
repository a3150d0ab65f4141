import { reservedTags, type Machine, type MachineState as ProviderState } from '../cloud/provider.ts';
import { hoursPerMonth, type MachineRecord, type MachineState } from '../../inventory/index.ts';

/** A machine at the provider (in any state it holds it: a dead container still holds its name) that no live machine of the inventory accounts for. */
export interface Orphan {
  providerId: string;
  /** From its reserved tags, when it has them. */
  pool: string | null;
  name: string | null;
  state: ProviderState;
  instanceType: string | null;
  createdAt: string | null;
  /** The installation that made it: this one (a create whose answer was lost), another one, or none (not berth). */
  installation: string | null;
  madeHere: boolean;
  /** The rate card's price of its instance type (null: not on the rate card), and what it has cost since it was made. */
  hourlyPrice: number | null;
  costSoFar: number | null;
  remedy: string;
}

/** A live machine of the inventory that its provider no longer holds: the ledger charges for nothing. */
export interface Ghost {
  machineId: string;
  pool: string;
  name: string;
  state: MachineState;
  providerId: string | null;
  hourlyPrice: number;
  remedy: string;
}

/** A machine both know of, in states that disagree (ready in the inventory, stopped at the provider). */
export interface Drift {
  machineId: string;
  pool: string;
  name: string;
  inventoryState: MachineState;
  providerState: ProviderState;
  providerId: string;
  remedy: string;
}

export interface ReconcileReport {
  cluster: string;
  provider: string;
  /** This inventory's installation id. */
  installation: string;
  checkedAt: string;
  /** Machines the provider holds for the cluster. */
  atProvider: number;
  orphans: Orphan[];
  ghosts: Ghost[];
  drift: Drift[];
  /** A month of the orphans (not in the ledger) and of the ghosts (in the ledger, running nowhere) at their prices. */
  monthlyCost: { orphans: number; ghosts: number };
}

// A machine in these states may be created or destroyed this very moment: not a ghost, whatever the provider says.
const inFlight: readonly MachineState[] = ['requested', 'destroying', 'destroyed'];
// States in which the inventory says the machine runs.
const up: readonly MachineState[] = ['running', 'initializing', 'ready'];

/** The live machine of the inventory a provider's machine belongs to: by provider id, or by the key of a create in flight. */
export function ownerOf(machine: Machine, live: readonly MachineRecord[]): MachineRecord | undefined {
  const key = machine.tags[reservedTags.idempotencyKey];
  return live.find((m) => m.providerId === machine.id) ?? live.find((m) => m.id === key);
}

/** Where each kind of finding is resolved, through the CLI (the API routes are in the README). */
export const remedies = {
  orphan: (cluster: string, id: string) => `adopt it (bin/berth orphan adopt ${id} --cluster ${cluster}) or destroy it (bin/berth orphan destroy ${id} --cluster ${cluster})`,
  ghost: (id: string) => `decommission it to record it destroyed (bin/berth decommission ${id})`,
  drift: (id: string) => `see why the provider has it stopped; decommission it (bin/berth decommission ${id}) if it is not coming back`,
};

const round = (n: number) => Math.round(n * 100) / 100;

/**
 * Holds what the provider has against the inventory. `before` and `after` are the cluster's live machines read
 * before and after the provider's list: a machine created meanwhile is no orphan (its row is in `after`), one
 * destroyed meanwhile no ghost (it must be live in both).
 */
export function reconcileReport(input: {
  cluster: string;
  provider: string;
  installation: string;
  before: readonly MachineRecord[];
  atProvider: readonly Machine[];
  after: readonly MachineRecord[];
  price: (instanceType: string) => number | null;
  now: Date;
}): ReconcileReport {
  const { cluster, installation, before, after, atProvider, now } = input;
  const live = [...after, ...before.filter((b) => !after.some((a) => a.id === b.id))];
  const orphans = atProvider
    .filter((m) => !ownerOf(m, live))
    .map((m): Orphan => {
      const hourlyPrice = m.instanceType ? input.price(m.instanceType) : null;
      const hours = m.createdAt ? (now.getTime() - Date.parse(m.createdAt)) / 3_600_000 : null;
      const madeBy = m.tags[reservedTags.installation] ?? null;
      return {
        providerId: m.id,
        pool: m.tags[reservedTags.pool] ?? null,
        name: m.tags[reservedTags.name] ?? null,
        state: m.state,
        instanceType: m.instanceType ?? null,
        createdAt: m.createdAt ?? null,
        installation: madeBy,
        madeHere: madeBy === installation,
        hourlyPrice,
        costSoFar: hourlyPrice === null || hours === null ? null : round(hourlyPrice * hours),
        remedy: remedies.orphan(cluster, m.id),
      };
    });
  const held = (r: MachineRecord) => atProvider.find((m) => m.state !== 'terminated' && ownerOf(m, [r]));
  const ghosts = before
    .filter((b) => !inFlight.includes(b.state) && after.some((a) => a.id === b.id && a.state === b.state) && !held(b))
    .map((r): Ghost => ({ machineId: r.id, pool: r.pool, name: r.name, state: r.state, providerId: r.providerId, hourlyPrice: r.hourlyPrice, remedy: remedies.ghost(r.id) }));
  const drift = after.flatMap((r): Drift[] => {
    const m = up.includes(r.state) ? held(r) : undefined;
    return m && m.state !== 'running' ? [{ machineId: r.id, pool: r.pool, name: r.name, inventoryState: r.state, providerState: m.state, providerId: m.id, remedy: remedies.drift(r.id) }] : [];
  });
  const monthly = (prices: (number | null)[]) => round(prices.reduce<number>((sum, p) => sum + (p ?? 0), 0) * hoursPerMonth);
  return {
    cluster,
    provider: input.provider,
    installation,
    checkedAt: now.toISOString(),
    atProvider: atProvider.length,
    orphans,
    ghosts,
    drift,
    monthlyCost: { orphans: monthly(orphans.map((o) => o.hourlyPrice)), ghosts: monthly(ghosts.map((g) => g.hourlyPrice)) },
  };
}

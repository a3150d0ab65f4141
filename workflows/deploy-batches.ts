// How a deploy splits a pool's machines into batches: pure, so that the bounds are checked by table tests.

export interface MachineStep {
  machineId: string;
  /** Start each new replica before its old one stops (a surge container) rather than after. */
  surge: boolean;
}

export interface Batch {
  machines: MachineStep[];
  /** The first batch of a deploy that asks for approval: one machine, then wait. */
  canary: boolean;
}

/**
 * Batches of machines, in the order given. Each machine in a batch replaces its replicas one at a time, so it has
 * one replica out of service (or one surge container) at a time: a batch holds `maxSurge + maxUnavailable`
 * machines, the first `maxSurge` of them starting each new replica before stopping its old one. So at any moment at
 * most `maxUnavailable` replicas are out of service and at most `maxSurge` run on top of the wanted number. With
 * approval, the first batch is a single machine, the canary.
 */
export function planBatches(machineIds: string[], opts: { maxUnavailable: number; maxSurge: number; approval: boolean }): Batch[] {
  const size = opts.maxUnavailable + opts.maxSurge;
  if (size < 1) throw new Error('maxUnavailable and maxSurge cannot both be 0');
  const batch = (ids: string[], canary: boolean): Batch => ({ machines: ids.map((machineId, i) => ({ machineId, surge: i < opts.maxSurge })), canary });
  const batches: Batch[] = [];
  let rest = machineIds;
  if (opts.approval && rest.length > 0) {
    batches.push(batch(rest.slice(0, 1), true));
    rest = rest.slice(1);
  }
  for (let i = 0; i < rest.length; i += size) batches.push(batch(rest.slice(i, i + size), false));
  return batches;
}

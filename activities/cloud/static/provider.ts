import { allocate, allocationHeldBy, findAllocation, labelAllocation, listAllocations, release, type Allocation, type Inventory } from '../../../inventory/index.ts';
import { createTags, ProviderError, rateCardPrice, type CloudProvider, type CreatedMachine, type Machine, type MachineSpec, type ProviderContext } from '../provider.ts';
import { answersTcp } from './reachable.ts';
import type { StaticProviderConfig as StaticConfig } from './schema.ts';

type StaticHost = StaticConfig['hosts'][number];

/** A physical host has no API that knows who holds it: the allocations live in the inventory database. */
export type StaticProviderContext = ProviderContext & { inventory: Inventory };

export interface StaticProvider extends CloudProvider {
  /**
   * Takes in one named host as it is (Docker Machine's generic driver): allocated to the spec's key whether or not
   * it answers now. The same key again returns it; a host another key holds is refused.
   */
  adopt(host: string, spec: MachineSpec): Promise<CreatedMachine>;
}

// Long enough for a loaded host's sshd to accept, short enough that a dead host does not hold up a create.
const probeTimeoutMs = 3000;

/**
 * A pool of hosts listed in config. create allocates a free one that answers on its SSH port, destroy releases it
 * (the host itself stays as it is); the machine's id is the host's name. Allocation goes through the inventory's
 * keys, so two creates, in any processes, never get the same host, and a create repeated with its key gets the
 * host it got the first time.
 */
export function staticProvider(config: StaticConfig, { cluster, rateCard, inventory, installation }: StaticProviderContext): StaticProvider {
  const scope = `static:${cluster}`;
  const hostNamed = (name: string) => config.hosts.find((h) => h.name === name);
  const answers = (h: StaticHost) => answersTcp(h.address, h.sshPort, probeTimeoutMs);

  /** A held host as a machine: running when its SSH port answers. A host config no longer lists is `stopped`. */
  const machineOf = async (held: Allocation): Promise<Machine> => {
    const host = hostNamed(held.slot);
    const state = host && (await answers(host)) ? 'running' : 'stopped';
    return { id: held.slot, state, ...(host && { address: host.address, sshPort: host.sshPort, instanceType: host.instanceType }), createdAt: held.allocatedAt, tags: held.labels };
  };

  const describe = async (id: string): Promise<Machine> => {
    const held = hostNamed(id) && (await findAllocation(inventory, scope, id));
    return held ? machineOf(held) : { id, state: 'terminated', tags: {} };
  };

  const take = async (spec: MachineSpec, candidates: StaticHost[]) => {
    const got = await allocate(inventory, { scope, key: spec.idempotencyKey, candidates: candidates.map((h) => h.name), labels: createTags(spec, installation) });
    return got && { ...(await machineOf(got.allocation)), created: got.fresh };
  };

  return {
    kind: 'static',

    async create(spec) {
      const fitting = config.hosts.filter((h) => h.instanceType === spec.instanceType);
      const held = new Set((await listAllocations(inventory, scope)).map((a) => a.slot));
      const free = fitting.filter((h) => !held.has(h.name));
      const answering = await Promise.all(free.map(answers));
      const machine = await take(
        spec,
        free.filter((_, i) => answering[i]),
      );
      if (machine) return machine;
      const list = (what: string, hosts: StaticHost[]) => (hosts.length ? [`${hosts.length} ${what} (${hosts.map((h) => h.name).join(', ')})`] : []);
      const heldNow = new Set((await listAllocations(inventory, scope)).map((a) => a.slot));
      const why = fitting.length
        ? [
            ...list(
              'allocated',
              fitting.filter((h) => heldNow.has(h.name)),
            ),
            ...list(
              'not answering on the SSH port',
              free.filter((h, i) => !answering[i] && !heldNow.has(h.name)),
            ),
          ]
        : ['it lists no host of that type'];
      throw new ProviderError('NoCapacity', `no free static host in cluster ${cluster} for pool ${spec.pool} (instance type ${spec.instanceType}): ${why.join(', ')}`);
    },

    async adopt(name, spec) {
      const host = hostNamed(name);
      if (!host) throw new ProviderError('ProviderRejected', `cluster ${cluster} lists no static host ${name}`);
      const machine = await take(spec, [host]);
      if (!machine) throw new ProviderError('NoCapacity', `static host ${name} of cluster ${cluster} is held by ${(await findAllocation(inventory, scope, name))?.key ?? 'another request'}`);
      if (machine.id !== name) throw new ProviderError('ProviderRejected', `idempotency key ${spec.idempotencyKey} already holds static host ${machine.id} of cluster ${cluster}, not ${name}`);
      return machine;
    },

    async findByKey(key) {
      const held = await allocationHeldBy(inventory, scope, key);
      return held ? [await machineOf(held)] : [];
    },

    list: async () => Promise.all((await listAllocations(inventory, scope)).map(machineOf)),

    describe,

    async destroy(id) {
      await release(inventory, scope, id);
    },

    async tag(id, tags) {
      if (!(await labelAllocation(inventory, scope, id, tags))) throw new ProviderError('MachineNotFound', `static host ${id} of cluster ${cluster} is not allocated`);
    },

    hourlyPrice: (instanceType) => rateCardPrice(rateCard, 'static', instanceType),
  };
}

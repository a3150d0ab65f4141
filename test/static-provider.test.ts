import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openInventory, type Inventory } from '../inventory/index.ts';
import { machineSpecSchema, type MachineSpec } from '../activities/cloud/provider.ts';
import { staticProvider } from '../activities/cloud/static/provider.ts';
import { providerSchema } from '../config/schema.ts';
import { freePort } from '../embedded/processes.ts';
import { tempDir } from '../testbed/berth.ts';

const sshPublicKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBerthTestKeyBerthTestKeyBerthTestKeyBerth berth@test';
const spec = (name: string, more: Partial<MachineSpec> = {}): MachineSpec => machineSpecSchema.parse({ cluster: 'rack', pool: 'web', name, instanceType: 'physical', idempotencyKey: `req-${name}`, sshPublicKey, ...more });

/** A listening socket on a loopback port: all the provider asks of a host is that its SSH port answers. */
async function listening(): Promise<Server> {
  // The provider's probe connects and hangs up at once: a reset is expected, not an error.
  const server = createServer((socket) => socket.on('error', () => undefined));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
const portOf = (s: Server) => (s.address() as { port: number }).port;

describe('static provider against hosts on 127.0.0.1', () => {
  const servers = new Map<string, Server>();
  let config: Extract<ReturnType<typeof providerSchema.parse>, { kind: 'static' }>;
  const inventories: Inventory[] = [];

  before(async () => {
    for (const name of ['h1', 'h2', 'h3', 'big1']) servers.set(name, await listening());
    const host = (name: string, sshPort: number, instanceType?: string) => ({ name, address: '127.0.0.1', sshPort, ...(instanceType && { instanceType }) });
    const parsed = providerSchema.parse({
      kind: 'static',
      // `dead` is listed but nothing listens on its port.
      hosts: [host('h1', portOf(servers.get('h1')!)), host('h2', portOf(servers.get('h2')!)), host('dead', await freePort()), host('h3', portOf(servers.get('h3')!)), host('big1', portOf(servers.get('big1')!), 'big')],
    });
    assert.equal(parsed.kind, 'static');
    config = parsed;
  });
  after(async () => {
    for (const db of inventories) await db.destroy();
    for (const s of servers.values()) s.close();
  });

  /** `workers` providers of one cluster, each on its own connection to one fresh inventory file, as in separate processes. */
  async function providers(workers = 1) {
    const file = join(tempDir('static'), 'inventory.db');
    return Promise.all(
      Array.from({ length: workers }, async () => {
        const inventory = await openInventory({ sqliteFile: file });
        inventories.push(inventory);
        return staticProvider(config, { cluster: 'rack', rateCard: { static: { physical: 0.12, big: 0.5 } }, installation: 'rack-tests', inventory });
      }),
    );
  }

  test('concurrent creates get distinct hosts that answer; a repeated key gets its host again; then the pool is exhausted', async () => {
    const workers = await providers(3);
    // Six creates from three workers at once for three answering hosts: three win one host each, three find none.
    const settled = await Promise.allSettled(['web-1', 'web-2', 'web-3', 'web-4', 'web-5', 'web-6'].map((name, i) => workers[i % 3].create(spec(name))));
    const made = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    assert.deepEqual(made.map((m) => m.id).sort(), ['h1', 'h2', 'h3']);
    assert.deepEqual(
      settled.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).name] : [])),
      ['NoCapacity', 'NoCapacity', 'NoCapacity'],
    );
    const [a, b] = workers;
    for (const m of made) {
      assert.equal(m.created, true);
      assert.equal(m.state, 'running');
      assert.deepEqual([m.address, m.sshPort, m.instanceType], ['127.0.0.1', portOf(servers.get(m.id)!), 'physical']);
    }
    const first = made[0];
    const again = await b.create(spec(first.tags['berth:name']));
    assert.deepEqual([again.id, again.created], [first.id, false]);

    await assert.rejects(a.create(spec('web-7')), {
      name: 'NoCapacity',
      message: 'no free static host in cluster rack for pool web (instance type physical): 3 allocated (h1, h2, h3), 1 not answering on the SSH port (dead)',
    });
    await assert.rejects(a.create(spec('db-1', { pool: 'db', instanceType: 'gpu' })), {
      name: 'NoCapacity',
      message: 'no free static host in cluster rack for pool db (instance type gpu): it lists no host of that type',
    });
    const big = await a.create(spec('big-1', { instanceType: 'big' }));
    assert.equal(big.id, 'big1');
    assert.equal(a.hourlyPrice('big'), 0.5);
  });

  test('destroy releases the host for the next create; tags stay with the allocation', async () => {
    const [p] = await providers();
    const first = await p.create(spec('web-1'));
    await p.tag(first.id, { owner: 'alice' });
    assert.deepEqual((await p.describe(first.id)).tags, { owner: 'alice', 'berth:cluster': 'rack', 'berth:pool': 'web', 'berth:name': 'web-1', 'berth:idempotency-key': 'req-web-1', 'berth:installation': 'rack-tests' });

    await p.destroy(first.id);
    await p.destroy(first.id); // already released: not an error
    assert.deepEqual(await p.describe(first.id), { id: first.id, state: 'terminated', tags: {} });
    await assert.rejects(p.tag(first.id, { owner: 'bob' }), { name: 'MachineNotFound', message: `static host ${first.id} of cluster rack is not allocated` });

    const next = await p.create(spec('web-2'));
    assert.deepEqual([next.id, next.created, next.tags.owner], [first.id, true, undefined]);
  });

  test('findByKey and list: the allocated hosts, as machines, with the tags of their create', async () => {
    const [p] = await providers();
    const m = await p.create(spec('web-1'));
    assert.deepEqual(
      (await p.findByKey('req-web-1')).map((x) => [x.id, x.state, x.tags['berth:installation']]),
      [[m.id, 'running', 'rack-tests']],
    );
    assert.deepEqual(await p.findByKey('req-nobody'), []);
    const listed = await p.list();
    assert.deepEqual(
      listed.map((x) => [x.id, x.tags['berth:name']]),
      [[m.id, 'web-1']],
    );
    assert.ok(Date.parse(listed[0].createdAt!) <= Date.now());
    await p.destroy(m.id);
    assert.deepEqual([await p.list(), await p.findByKey('req-web-1')], [[], []]);
  });

  test('describe says whether the host answers now', async () => {
    const [p] = await providers();
    const m = await p.create(spec('web-1'));
    const server = servers.get(m.id)!;
    await new Promise((resolve) => server.close(resolve));
    try {
      assert.equal((await p.describe(m.id)).state, 'stopped');
    } finally {
      await new Promise<void>((resolve) => server.listen(m.sshPort, '127.0.0.1', resolve));
    }
    assert.equal((await p.describe(m.id)).state, 'running');
  });

  test('adopt takes a named host as it is, once', async () => {
    const [p] = await providers();
    const dead = await p.adopt('dead', spec('legacy-1'));
    assert.deepEqual([dead.id, dead.created, dead.state], ['dead', true, 'stopped']);
    assert.equal((await p.adopt('dead', spec('legacy-1'))).created, false);
    await assert.rejects(p.adopt('dead', spec('legacy-2')), { name: 'NoCapacity', message: 'static host dead of cluster rack is held by req-legacy-1' });
    await assert.rejects(p.adopt('h1', spec('legacy-1')), { name: 'ProviderRejected', message: 'idempotency key req-legacy-1 already holds static host dead of cluster rack, not h1' });
    await assert.rejects(p.adopt('h9', spec('legacy-3')), { name: 'ProviderRejected', message: 'cluster rack lists no static host h9' });
  });
});

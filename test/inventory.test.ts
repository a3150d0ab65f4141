import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FileMigrationProvider, Kysely, Migrator, sql } from 'kysely';
import type { InventoryTables } from '../inventory/tables.ts';
import {
  costs,
  getMachine,
  installationId,
  inventoryDialect,
  listMachines,
  listPools,
  machineEvents,
  openInventory,
  pinHostKey,
  projectedMonthlyCost,
  recordMachine,
  recordMachineEvent,
  setPoolDesired,
  transitionMachine,
  type Inventory,
  type NewMachine,
} from '../inventory/index.ts';
import { ConfigError, parseConfig } from '../config/load.ts';
import type { InventoryConfig } from '../config/schema.ts';
import { freshInventory, inventoryKinds, stopTestPostgres, type InventoryKind } from './harness/inventory-db.ts';

const hour = 3_600_000;
const t0 = Date.parse('2025-03-01T00:00:00Z');
const at = (hours: number) => new Date(t0 + hours * hour);

after(stopTestPostgres);

async function withInventory(kind: InventoryKind, fn: (db: Inventory, target: InventoryConfig) => Promise<void>): Promise<void> {
  const target = await freshInventory(kind);
  const db = await openInventory(target);
  try {
    await fn(db, target);
  } finally {
    await db.destroy();
  }
}

const machine = (id: string, more: Partial<NewMachine> = {}): NewMachine => ({
  id,
  cluster: 'alpha',
  pool: 'web',
  provider: 'static',
  name: id,
  instanceType: 'physical',
  hourlyPrice: 1,
  ...more,
});

for (const kind of inventoryKinds)
  describe(`inventory on ${kind}`, () => {
    test('migrations run once: reopening keeps the data and applies nothing again', async () => {
      await withInventory(kind, async (db, target) => {
        const applied = (inv: Inventory) =>
          inv
            .selectFrom('kysely_migration' as never)
            .selectAll()
            .execute();
        const before = await applied(db);
        assert.deepEqual(
          before.slice(0, 2).map((r) => (r as { name: string }).name),
          ['0001_machines', '0002_allocations'],
        );
        await recordMachine(db, machine('m1'));
        await db.destroy();
        const again = await openInventory(target);
        try {
          assert.equal((await getMachine(again, 'm1')).state, 'requested');
          assert.deepEqual(await applied(again), before);
        } finally {
          await again.destroy();
        }
      });
    });

    test('an inventory of 0.1.0 migrates: machines and events kept, one installation id, `destroying` a state, one live machine per provider id', async () => {
      const target = await freshInventory(kind);
      // The inventory as 0.1.0 left it: migrated up to 0050_access, with a machine and its history.
      const old = new Kysely<InventoryTables>({ dialect: inventoryDialect(target) });
      const migrationFolder = fileURLToPath(new URL('../inventory/migrations/', import.meta.url));
      assert.equal((await new Migrator({ db: old, provider: new FileMigrationProvider({ fs, path, migrationFolder }) }).migrateTo('0050_access')).error, undefined);
      await recordMachine(old, machine('m1', { at: at(0) }));
      await transitionMachine(old, 'm1', 'creating', { at: at(1), providerId: 'host-1' });
      await transitionMachine(old, 'm1', 'failed', { at: at(2), failureReason: 'init step sysctl: exit 1' });
      await old.destroy();

      const db = await openInventory(target);
      const id = await installationId(db);
      try {
        assert.deepEqual(
          (await machineEvents(db, 'm1')).map((e) => e.kind),
          ['requested', 'creating', 'failed'],
        );
        assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
        if ('sqliteFile' in target) {
          // SQLite rebuilt the table with foreign keys off: they are on again, and nothing dangles.
          assert.deepEqual(await sql`pragma foreign_key_check`.execute(db).then((r) => r.rows), []);
          assert.deepEqual((await sql<{ foreign_keys: number }>`pragma foreign_keys`.execute(db)).rows, [{ foreign_keys: 1 }]);
        }
        // Another machine cannot take host-1 while m1 holds it (two adoptions of one orphan), and can once it is destroyed.
        await recordMachine(db, machine('m2'));
        await assert.rejects(transitionMachine(db, 'm2', 'creating', { providerId: 'host-1' }), /UNIQUE constraint failed: machines\.cluster, machines\.provider_id|violates unique constraint "machines_live_provider_id"/);
        await transitionMachine(db, 'm1', 'destroying', { at: at(3), failureReason: 'compensation' });
        await assert.rejects(transitionMachine(db, 'm1', 'ready'), { name: 'InvalidTransition', message: 'machine m1 (alpha/web/m1) is destroying: it cannot become ready' });
        await transitionMachine(db, 'm1', 'destroyed', { at: at(4) });
        await transitionMachine(db, 'm2', 'creating', { providerId: 'host-1' });
        assert.deepEqual(
          (await machineEvents(db, 'm1')).map((e) => e.kind),
          ['requested', 'creating', 'failed', 'destroying', 'destroyed'],
        );
      } finally {
        await db.destroy();
      }
      // The installation id is made once, by the migration: reopening keeps it.
      const again = await openInventory(target);
      assert.equal(await installationId(again), id);
      await again.destroy();
    });

    test('two openers of a fresh database at once (the API and a worker) both get a migrated inventory', async () => {
      const target = await freshInventory(kind);
      const both = await Promise.all([openInventory(target), openInventory(target)]);
      await recordMachine(both[0], machine('m1'));
      assert.equal((await getMachine(both[1], 'm1')).name, 'm1');
      await Promise.all(both.map((db) => db.destroy()));
    });

    test('a machine goes through its lifecycle, each step stamped and recorded', async () => {
      await withInventory(kind, async (db) => {
        const recorded = await recordMachine(db, machine('m1', { at: at(0) }));
        assert.deepEqual(await recordMachine(db, machine('m1', { at: at(1) })), recorded, 'recording again is a no-op');
        await transitionMachine(db, 'm1', 'creating', { at: at(0.1) });
        await transitionMachine(db, 'm1', 'running', { at: at(0.2), providerId: 'host-1', address: '127.0.0.1', sshPort: 2222 });
        // A retried activity moves it to the state it is in: no second event, fields applied.
        await transitionMachine(db, 'm1', 'running', { at: at(0.3), sshPort: 2223 });
        await transitionMachine(db, 'm1', 'initializing', { at: at(0.4) });
        await recordMachineEvent(db, 'm1', 'init:sysctl', 'changed', at(0.45));
        const ready = await transitionMachine(db, 'm1', 'ready', { at: at(0.5), detail: 'profile base: 3 changed, 2 ok' });
        assert.equal(ready.createdAt, at(0).toISOString());
        assert.equal(ready.readyAt, at(0.5).toISOString());
        assert.deepEqual([ready.providerId, ready.address, ready.sshPort], ['host-1', '127.0.0.1', 2223]);
        assert.deepEqual(
          (await machineEvents(db, 'm1')).map((e) => [e.kind, e.detail]),
          [
            ['requested', null],
            ['creating', null],
            ['running', null],
            ['initializing', null],
            ['init:sysctl', 'changed'],
            ['ready', 'profile base: 3 changed, 2 ok'],
          ],
        );

        await assert.rejects(recordMachine(db, machine('m2', { name: 'm1' })), { name: 'NameTaken', message: 'cluster alpha already has a machine named m1: m1, ready' });
        await assert.rejects(transitionMachine(db, 'm1', 'initializing'), { name: 'InvalidTransition', message: 'machine m1 (alpha/web/m1) is ready: it cannot become initializing' });
        await assert.rejects(transitionMachine(db, 'nope', 'ready'), { name: 'UnknownMachine' });

        await transitionMachine(db, 'm1', 'decommissioning');
        const gone = await transitionMachine(db, 'm1', 'destroyed', { at: at(5) });
        assert.equal(gone.destroyedAt, at(5).toISOString());
        // The name is free again once its machine is destroyed.
        await recordMachine(db, machine('m1-again', { name: 'm1' }));
        assert.deepEqual(
          (await listMachines(db, { cluster: 'alpha', state: ['requested', 'destroyed'] })).map((m) => [m.id, m.state]),
          [
            ['m1', 'destroyed'],
            ['m1-again', 'requested'],
          ],
        );
      });
    });

    test('a failed machine keeps why, and keeps costing until it is destroyed', async () => {
      await withInventory(kind, async (db) => {
        await recordMachine(db, machine('m1'));
        await transitionMachine(db, 'm1', 'creating');
        const failed = await transitionMachine(db, 'm1', 'failed', { failureReason: 'init step sysctl: exit 1' });
        assert.equal(failed.destroyedAt, null);
        assert.equal(await projectedMonthlyCost(db, 'alpha'), 730);
        const destroyed = await transitionMachine(db, 'm1', 'destroyed', { detail: 'compensation' });
        assert.equal(destroyed.failureReason, 'init step sysctl: exit 1');
        assert.equal(await projectedMonthlyCost(db, 'alpha'), 0);
      });
    });

    test('the first host key is pinned, later ones must match', async () => {
      await withInventory(kind, async (db) => {
        await recordMachine(db, machine('m1'));
        assert.equal(await pinHostKey(db, 'm1', 'SHA256:aaa'), 'pinned');
        assert.equal(await pinHostKey(db, 'm1', 'SHA256:aaa'), 'verified');
        await assert.rejects(pinHostKey(db, 'm1', 'SHA256:bbb'), {
          name: 'HostKeyMismatch',
          message: 'machine m1 (alpha/web/m1) offered host key SHA256:bbb, but SHA256:aaa is pinned: refusing to connect',
        });
        assert.equal((await getMachine(db, 'm1')).hostKeyFingerprint, 'SHA256:aaa');
      });
    });

    test('costs: lifetimes cut to the window, times each price, per cluster and per pool', async () => {
      await withInventory(kind, async (db) => {
        const lifetime = async (id: string, m: Partial<NewMachine>, created: number, destroyed?: number) => {
          await recordMachine(db, machine(id, { ...m, at: at(created) }));
          if (destroyed !== undefined) await transitionMachine(db, id, 'destroyed', { at: at(destroyed) });
        };
        await lifetime('a1', { hourlyPrice: 1 }, -2, 3); // 3 h of it in the window
        await lifetime('a2', { hourlyPrice: 2 }, 1); // still running: 9 h
        await lifetime('a3', { pool: 'db', hourlyPrice: 0.5 }, 4, 6); // 2 h
        await lifetime('b1', { cluster: 'beta', hourlyPrice: 3 }, 8, 12); // 2 h
        await lifetime('b2', { cluster: 'beta', hourlyPrice: 3 }, -5, -1); // before the window
        await lifetime('b3', { cluster: 'beta', hourlyPrice: 3 }, 11); // after it
        const window = { from: at(0), to: at(10), now: at(20) };

        assert.deepEqual(await costs(db, { groupBy: 'cluster', ...window }), [
          { cluster: 'alpha', machineHours: 14, cost: 22 },
          { cluster: 'beta', machineHours: 2, cost: 6 },
        ]);
        assert.deepEqual(await costs(db, { groupBy: 'pool', ...window }), [
          { cluster: 'alpha', pool: 'db', machineHours: 2, cost: 1 },
          { cluster: 'alpha', pool: 'web', machineHours: 12, cost: 21 },
          { cluster: 'beta', pool: 'web', machineHours: 2, cost: 6 },
        ]);
        // What has not happened yet costs nothing: at hour 5, a2 has run 4 h of the window and a3 one.
        assert.deepEqual(await costs(db, { groupBy: 'cluster', from: at(0), to: at(10), now: at(5) }), [{ cluster: 'alpha', machineHours: 8, cost: 11.5 }]);
        assert.deepEqual(await costs(db, { groupBy: 'cluster', from: at(30), to: at(40), now: at(20) }), []);

        // Projected: the machines that exist now (a2 at 2/h in alpha; b3 at 3/h in beta) for 730 h.
        assert.equal(await projectedMonthlyCost(db, 'alpha'), 1460);
        assert.equal(await projectedMonthlyCost(db, 'beta'), 2190);
        assert.equal(await projectedMonthlyCost(db, 'gamma'), 0);
      });
    });

    test('pools: desired size and the machines that exist', async () => {
      await withInventory(kind, async (db) => {
        await setPoolDesired(db, { cluster: 'alpha', pool: 'web', desired: 3 });
        await setPoolDesired(db, { cluster: 'alpha', pool: 'db', desired: 1 });
        await setPoolDesired(db, { cluster: 'alpha', pool: 'web', desired: 2 });
        await recordMachine(db, machine('w1'));
        await recordMachine(db, machine('w2'));
        await transitionMachine(db, 'w2', 'destroyed');
        assert.deepEqual(await listPools(db, 'alpha'), [
          { cluster: 'alpha', pool: 'db', desired: 1, live: 0 },
          { cluster: 'alpha', pool: 'web', desired: 2, live: 1 },
        ]);
      });
    });
  });

describe("berth.yaml's inventory", () => {
  const base = 'idcs: [{ name: a }]\nregistries: [{ name: r, idc: a, url: "http://127.0.0.1:5001" }]\n';
  const problems = (inventory: string) => {
    try {
      parseConfig(`${base}inventory: ${inventory}\n`, 'berth.yaml', '/etc/berth');
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      return err.problems;
    }
    return assert.fail('the config should be rejected');
  };

  test('picks the database: a SQLite file by default, PostgreSQL when given, its password file relative to berth.yaml', () => {
    assert.deepEqual(parseConfig(base, 'berth.yaml', '/etc/berth').inventory, { sqliteFile: '/etc/berth/.berth/inventory.db' });
    const { inventory } = parseConfig(`${base}inventory: { postgres: { host: db, database: berth, user: berth, passwordFile: secrets/db } }\n`, 'berth.yaml', '/etc/berth');
    assert.deepEqual(inventory, { postgres: { host: 'db', port: 5432, database: 'berth', user: 'berth', passwordFile: '/etc/berth/secrets/db', ssl: false, maxConnections: 10 } });
  });

  test('bad input names the field', () => {
    assert.deepEqual(problems('{ sqliteFile: a.db, postgres: { host: db, database: berth, user: berth } }'), ['inventory: set sqliteFile or postgres, not both']);
    assert.deepEqual(problems('{ postgres: { host: db, database: berth, user: berth, password: hunter2 } }'), [
      'inventory.postgres.password: inline secrets are not accepted: use passwordEnv (an env var name) or passwordFile (a path)',
    ]);
    assert.deepEqual(problems('{ postgres: { host: db, user: berth } }'), ['inventory.postgres.database: Invalid input: expected string, received undefined']);
  });

  test('a password file that cannot be read is named, and nothing is opened', async () => {
    const { inventory } = parseConfig(`${base}inventory: { postgres: { host: 127.0.0.1, database: berth, user: berth, passwordFile: /nonexistent/db-password } }\n`, 'berth.yaml', '/etc/berth');
    await assert.rejects(openInventory(inventory), { message: /^cannot read the password of the inventory database berth from \/nonexistent\/db-password: ENOENT/ });
  });
});

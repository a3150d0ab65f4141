import type { Kysely } from 'kysely';
import { withAutoId } from '../ddl.ts';

// Services' releases (what was deployed, by whom, how it ended) and what each machine of a service runs.
export async function up(db: Kysely<unknown>): Promise<void> {
  await withAutoId(db, db.schema.createTable('service_releases'))
    .addColumn('service', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('digest', 'text')
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('workflow_id', 'text', (c) => c.notNull())
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('started_at', 'bigint', (c) => c.notNull())
    .addColumn('finished_at', 'bigint')
    // running, succeeded, rolled-back (a batch failed and every machine went back), failed
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('detail', 'text')
    // A workflow run records its release once, however often its activity is retried.
    .addUniqueConstraint('service_releases_run', ['run_id'])
    .execute();
  await db.schema.createIndex('service_releases_service').on('service_releases').columns(['service', 'started_at']).execute();
  await db.schema
    .createTable('service_machines')
    .addColumn('service', 'text', (c) => c.notNull())
    .addColumn('machine_id', 'text', (c) => c.notNull())
    .addColumn('version', 'text')
    .addColumn('digest', 'text')
    // JSON array of the replicas: container id, replica, version, state, published ports.
    .addColumn('containers', 'text', (c) => c.notNull())
    // healthy, unhealthy (a health check failed), drained (containers stopped: the machine is leaving the pool)
    .addColumn('health', 'text', (c) => c.notNull())
    .addColumn('detail', 'text')
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('service_machines_pk', ['service', 'machine_id'])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('service_machines').execute();
  await db.schema.dropTable('service_releases').execute();
}

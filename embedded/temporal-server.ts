import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { stringify } from 'yaml';
import { ensureSearchAttributes } from '../api/search-attributes.ts';
import { berthSearchAttributes } from '../contracts/search-attributes.ts';
import type { PostgresServer } from './postgres.ts';
import { freePort, spawnManaged, waitUntil, type ManagedProcess } from './processes.ts';

const run = promisify(execFile);
const tools = fileURLToPath(new URL('../.tools/', import.meta.url));

/** A Go-built tool that `bash scripts/setup.sh test` (or `bench`) linked into .tools/. */
function tool(path: string): string {
  const file = join(tools, path);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`bash scripts/setup.sh test\` (npm test does)`);
  return file;
}

/** The server's services; `split` runs each as its own process, as a cluster spreads them over hosts. */
export const temporalServices = ['frontend', 'history', 'matching', 'worker'] as const;

export interface TemporalServerOptions {
  /** Config, dynamic config and logs. */
  dir: string;
  postgres: PostgresServer;
  /** The frontend's gRPC port. */
  port: number;
  layout?: 'single' | 'split';
  /** 4 unless given: a history shard is the unit of the server's write concurrency. */
  numHistoryShards?: number;
  namespace?: string;
}

export interface TemporalServer {
  address: string;
  namespace: string;
  /** One per service with `split`, one for all with `single`. */
  processes: ManagedProcess[];
  /** Starts the server (again) on the same ports and databases; ready when the namespace takes berth's queries. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The real Temporal server (v1.29.1, built by setup.sh) on PostgreSQL with SQL advanced visibility: its two
 * databases created and migrated with temporal-sql-tool, the namespace registered and berth's search attributes
 * usable before this resolves.
 */
export async function startTemporalServer(opts: TemporalServerOptions): Promise<TemporalServer> {
  const namespace = opts.namespace ?? 'default';
  mkdirSync(join(opts.dir, 'config'), { recursive: true });
  await setUpDatabases(opts.postgres);
  const ports: Record<string, number> = { grpc: opts.port, frontendHttp: await freePort() };
  for (const service of ['history', 'matching', 'worker']) ports[service] = await freePort();
  // Membership ports are kept in a smallint column of the cluster_membership table.
  for (const service of temporalServices) ports[`${service}Membership`] = await freePort({ below: 32_768 });
  writeFileSync(join(opts.dir, 'config', 'berth.yaml'), stringify(serverConfig(opts, ports)));
  writeFileSync(join(opts.dir, 'dynamicconfig.yaml'), stringify(dynamicConfig));
  const address = `127.0.0.1:${opts.port}`;
  const groups = opts.layout === 'split' ? temporalServices.map((s) => [s]) : [[...temporalServices]];
  const server: TemporalServer = {
    address,
    namespace,
    processes: [],
    async start() {
      const spawn = (services: readonly string[]) => {
        const name = services.length === 1 ? `temporal-${services[0]}` : 'temporal-server';
        const args = ['--root', opts.dir, '--config', 'config', '--env', 'berth', '--allow-no-auth', 'start', ...services.flatMap((s) => ['--service', s])];
        return spawnManaged(name, tool('bin/temporal-server'), args, join(opts.dir, `${name}.log`));
      };
      // The first process writes the cluster's metadata on a fresh database; services started at the same time race
      // to write it too, and the losers exit. So the others start once the first (the frontend) answers.
      const [first, ...rest] = groups;
      server.processes = [spawn(first)];
      await waitUntil(`Temporal server on ${address}`, () => namespaceReady(address, namespace), { timeoutMs: 120_000, process: server.processes[0] });
      for (const services of rest) {
        const proc = spawn(services);
        server.processes.push(proc);
        // Up once it listens for its peers (the worker service serves no gRPC of its own).
        const membership = ports[`${services[0]}Membership`];
        await waitUntil(`${proc.name} on port ${membership}`, () => listening(membership), { timeoutMs: 60_000, process: proc });
      }
    },
    async stop() {
      for (const p of [...server.processes].reverse()) await p.stop();
    },
  };
  await server.start();
  return server;
}

/** Temporal's two databases, created and brought to this server version's schema (a no-op when they are). */
async function setUpDatabases(pg: PostgresServer): Promise<void> {
  const schema = tool('temporal-schema/postgresql/v12');
  const sql = (database: string, ...args: string[]) =>
    run(tool('bin/temporal-sql-tool'), ['--plugin', 'postgres12', '--ep', pg.host, '--port', String(pg.port), '--user', pg.user, '--db', database, ...args], {
      env: { ...process.env, SQL_PASSWORD: '' },
    });
  for (const [database, dir] of [
    ['temporal', 'temporal'],
    ['temporal_visibility', 'visibility'],
  ]) {
    await pg.createDatabase(database);
    await sql(database, 'setup-schema', '-v', '0.0');
    await sql(database, 'update-schema', '-d', join(schema, dir, 'versioned'));
  }
}

function serverConfig(opts: TemporalServerOptions, ports: Record<string, number>) {
  const store = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName,
      connectAddr: `${opts.postgres.host}:${opts.postgres.port}`,
      connectProtocol: 'tcp',
      user: opts.postgres.user,
      password: '',
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const rpc = (grpcPort: number, membershipPort: number, more: Record<string, unknown> = {}) => ({ rpc: { grpcPort, membershipPort, bindOnLocalHost: true, ...more } });
  return {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: opts.numHistoryShards ?? 4,
      datastores: { 'postgres-default': store('temporal', 20), 'postgres-visibility': store('temporal_visibility', 10) },
    },
    global: { membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' } },
    services: {
      frontend: rpc(ports.grpc, ports.frontendMembership, { httpPort: ports.frontendHttp }),
      history: rpc(ports.history, ports.historyMembership),
      matching: rpc(ports.matching, ports.matchingMembership),
      worker: rpc(ports.worker, ports.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: { active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: `127.0.0.1:${ports.grpc}` } },
    },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: { filepath: join(opts.dir, 'dynamicconfig.yaml'), pollInterval: '10s' },
  };
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket.end() !== undefined));
    socket.once('error', () => resolve(false));
  });
}

/** As deploy/temporal/dynamicconfig.yaml: berth's failback is an Update. */
const dynamicConfig = { 'frontend.enableUpdateWorkflowExecution': [{ value: true }] };

/**
 * Registers the namespace and berth's search attributes when missing; ready once a visibility query on every one
 * of them is accepted (new attributes take a moment to reach the frontend).
 */
async function namespaceReady(address: string, namespace: string): Promise<boolean> {
  const connection = await Connection.connect({ address, connectTimeout: 1000 });
  try {
    const service = connection.workflowService;
    await service.describeNamespace({ namespace }).catch(async (err: { code?: number }) => {
      if (err.code !== 5) throw err; // NOT_FOUND
      await service.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('3 days') });
    });
    await ensureSearchAttributes(connection, namespace);
    const query = berthSearchAttributes.map((key) => `${key.name} = 'ready'`).join(' OR ');
    await service.countWorkflowExecutions({ namespace, query });
    return true;
  } finally {
    await connection.close();
  }
}

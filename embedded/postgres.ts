import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { spawnManaged, waitUntil, type ManagedProcess } from './processes.ts';

const run = promisify(execFile);

/** PostgreSQL's server programs: Debian keeps them out of PATH, in /usr/lib/postgresql/<major>/bin. */
function postgresBinDir(): string {
  const debian = '/usr/lib/postgresql';
  const majors = existsSync(debian) ? readdirSync(debian).filter((v) => existsSync(join(debian, v, 'bin', 'postgres'))) : [];
  if (majors.length > 0) return join(debian, majors.sort((a, b) => Number(b) - Number(a))[0], 'bin');
  const onPath = (process.env.PATH ?? '').split(':').find((dir) => dir && existsSync(join(dir, 'postgres')));
  if (onPath) return onPath;
  throw new Error("PostgreSQL is not installed: install Debian's postgresql (scripts/setup.sh does)");
}

/** PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user Debian's package creates. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const entry = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .map((line) => line.split(':'))
    .find((fields) => fields[0] === 'postgres');
  if (!entry) throw new Error("PostgreSQL cannot run as root and there is no user postgres: install Debian's postgresql (scripts/setup.sh does)");
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

export interface PostgresServer {
  host: string;
  port: number;
  /** The superuser (trust authentication on loopback: no password). */
  user: string;
  dataDir: string;
  logFile: string;
  /** The running postmaster, while it runs. */
  process?: ManagedProcess;
  /** Starts the server (again) on the same port and data. */
  start(): Promise<void>;
  /** A fast shutdown: sessions are ended, the data is checkpointed. */
  stop(): Promise<void>;
  createDatabase(name: string): Promise<void>;
}

/**
 * A PostgreSQL cluster of its own in `dir` (initdb, then the postmaster as a child of this process on a loopback
 * port; never the system service), for the tests and benchmarks of the production path.
 */
export async function startPostgres(opts: { dir: string; port: number; settings?: Record<string, string> }): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const owner = serverUser();
  const dataDir = join(opts.dir, 'data');
  mkdirSync(opts.dir, { recursive: true });
  if (owner) chownSync(opts.dir, owner.uid, owner.gid);
  const user = 'berth';
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    await run(join(bin, 'initdb'), ['-D', dataDir, '-U', user, '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync', '--no-instructions'], { uid: owner?.uid, gid: owner?.gid });
  }
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    port: String(opts.port),
    unix_socket_directories: opts.dir,
    // Temporal's services each keep a pool per store; with four service processes and berth's pools, 100 is tight.
    max_connections: '300',
    ...opts.settings,
  };
  const server: PostgresServer = {
    host: '127.0.0.1',
    port: opts.port,
    user,
    dataDir,
    logFile: join(opts.dir, 'postgres.log'),
    async start() {
      const args = ['-D', dataDir, ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
      // SIGINT is PostgreSQL's fast shutdown; its SIGTERM would wait for every client to disconnect.
      const proc = spawnManaged('postgres', join(bin, 'postgres'), args, server.logFile, process.env, { ...owner, stopSignal: 'SIGINT' });
      server.process = proc;
      await waitUntil(`PostgreSQL on 127.0.0.1:${opts.port}`, () => query(server, 'postgres', 'select 1').then(() => true), { timeoutMs: 60_000, process: proc });
    },
    async stop() {
      await server.process?.stop();
      server.process = undefined;
    },
    async createDatabase(name) {
      await query(server, 'postgres', `create database "${name.replace(/"/g, '""')}"`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // duplicate_database: there already
      });
    },
  };
  await server.start();
  return server;
}

async function query(server: PostgresServer, database: string, text: string): Promise<void> {
  const client = new pg.Client({ host: server.host, port: server.port, user: server.user, database, connectionTimeoutMillis: 2000 });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

// `npm test`: one Temporal dev server for the whole run, then every test file under node's test runner.
// Each file starts the registries and workers it needs; files run two at a time (the machine has 2 cores).
// test/zz-history-scan.test.ts sorts last and waits for the others: it checks that no secret reached a history.
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, stopAll } from '../embedded/processes.ts';
import { startTemporalDevServer } from '../embedded/temporal-dev-server.ts';

const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : readdirSync('test')
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => join('test', f));

const dir = mkdtempSync(join(tmpdir(), 'berth-test-'));
// Every file's registries, machines and data dirs go under this run's folder, removed at the end whatever the
// outcome: a test killed at its timeout cannot clean up after itself, and runs must not fill the disk.
// Like /tmp itself, open to the other users the tests run servers as (PostgreSQL runs as `postgres`).
const scratch = join(dir, 'tmp');
mkdirSync(scratch);
chmodSync(dir, 0o755);
chmodSync(scratch, 0o1777);
const server = await startTemporalDevServer({ port: await freePort(), headless: true, dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'temporal.log') });
console.log(`Temporal dev server for this run: ${server.address} (log: ${server.logFile})`);

const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter', 'spec', '--test-concurrency', '2', ...files], {
  stdio: 'inherit',
  env: {
    ...process.env,
    TMPDIR: scratch,
    BERTH_TEST_TEMPORAL_ADDRESS: server.address,
    BERTH_LOG_LEVEL: process.env.BERTH_LOG_LEVEL ?? 'ERROR',
    // Where the tests write down the secrets they create: the last file scans every history for them.
    BERTH_TEST_SECRETS_DIR: join(dir, 'secrets'),
  },
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
const code = await new Promise<number>((resolve) => child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
await stopAll();
// A failed run keeps the Temporal server's log for whoever investigates; the scratch goes either way.
rmSync(code === 0 ? dir : scratch, { recursive: true, force: true });
if (code !== 0) console.log(`Temporal dev server's log kept: ${server.logFile}`);
process.exit(code);

// `npm test`: one Temporal dev server for the whole run, then every test file under node's test runner.
// Each file starts the registries and workers it needs; files run two at a time (the machine has 2 cores).
// test/history-secrets.test.ts runs alone after all the others: it checks that no secret reached any history they wrote.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort, stopAll } from '../embedded/processes.ts';
import { startTemporalDevServer } from '../embedded/temporal-dev-server.ts';

const files = process.argv.slice(2).length
  ? process.argv.slice(2)
  : readdirSync('test')
      .filter((f) => f.endsWith('.test.ts'))
      .map((f) => join('test', f));
const isHistoryScan = (file: string) => resolve(file) === resolve('test/history-secrets.test.ts');
const batches = [files.filter((f) => !isHistoryScan(f)), files.filter(isHistoryScan)].filter((batch) => batch.length > 0);

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

const env = {
  ...process.env,
  TMPDIR: scratch,
  BERTH_TEST_TEMPORAL_ADDRESS: server.address,
  BERTH_LOG_LEVEL: process.env.BERTH_LOG_LEVEL ?? 'ERROR',
  // Where the tests write down the secrets they create: the history scan looks for every one of them.
  BERTH_TEST_SECRETS_DIR: join(dir, 'secrets'),
};
let running: ChildProcess | undefined;
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const)
  process.on(sig, () => {
    interrupted = true;
    running?.kill(sig);
  });
let code = 0;
// The scan runs even after a failed batch: a leak is worth knowing about whatever else failed.
for (const batch of batches) {
  if (interrupted) break;
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter', 'spec', '--test-concurrency', '2', ...batch], { stdio: 'inherit', env });
  running = child;
  code = Math.max(code, await new Promise<number>((resolve) => child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)))));
}
await stopAll();
// A failed run keeps the Temporal server's log for whoever investigates; the scratch goes either way.
rmSync(code === 0 ? dir : scratch, { recursive: true, force: true });
if (code !== 0) console.log(`Temporal dev server's log kept: ${server.logFile}`);
process.exit(code);

// `npm run bench [-- <name>]`: runs bench/<name>.ts, `replicate` by default, in a child process whose temp dirs
// (registries' data, images, Temporal's database, logs) all go under one scratch folder, removed when it ends
// whatever the outcome: a failed or interrupted bench must not leave gigabytes in /tmp.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const name = process.argv[2] ?? 'replicate';
if (!/^[a-z-]+$/.test(name)) throw new Error(`no benchmark "${name}"`);
const scratch = mkdtempSync(join(tmpdir(), `berth-bench-${name}-`));
// Like /tmp itself, open to the other users benches run servers as (PostgreSQL runs as `postgres`).
chmodSync(scratch, 0o1777);
const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, `${name}.ts`), ...process.argv.slice(3)], {
  stdio: 'inherit',
  env: { ...process.env, TMPDIR: scratch },
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
const code = await new Promise<number>((resolve) => child.once('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
rmSync(scratch, { recursive: true, force: true });
process.exit(code);

// Ansible for the benches that measure berth against it: a PyPI package (`ansible-core`, or `ansible` with its
// bundled collections) in a venv under ~/.cache/berth, linked as .tools/<package>; installed on the first run only
// (only the benches need it).
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { berthCacheDir } from '../embedded/docker-engine.ts';
import { seconds } from './lib.ts';

const run = promisify(execFile);
const repoDir = fileURLToPath(new URL('../', import.meta.url));

/** The package's bin directory, and how long the install took when it happened. */
export async function ensureAnsible(pkg: 'ansible-core' | 'ansible', version: string): Promise<{ bin: string; installMs?: number }> {
  const venv = join(berthCacheDir(), `${pkg}-${version}`);
  const link = join(repoDir, '.tools', pkg);
  let installMs: number | undefined;
  if (!existsSync(join(venv, 'bin', 'ansible-playbook'))) {
    const { stdout } = await run('python3', ['-c', 'import sys; print(sys.version_info >= (3, 11))']).catch(() => ({ stdout: 'missing' }));
    if (stdout.trim() !== 'True') throw new Error(`${pkg} ${version} needs python3 >= 3.11 with venv (python3: ${stdout.trim() || 'too old'})`);
    console.log(`installing ${pkg}==${version} from PyPI into ${venv} (first run only)...`);
    const started = performance.now();
    rmSync(venv, { recursive: true, force: true });
    try {
      await run('python3', ['-m', 'venv', venv]);
      await run(join(venv, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', `${pkg}==${version}`], { maxBuffer: 16 << 20 });
    } catch (err) {
      rmSync(venv, { recursive: true, force: true });
      throw new Error(`could not install ${pkg} ${version}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, { cause: err });
    }
    installMs = performance.now() - started;
    console.log(`${pkg} ${version} installed in ${seconds(installMs, 1)}`);
  }
  let linked: string | undefined;
  try {
    linked = readlinkSync(link);
  } catch {
    linked = undefined;
  }
  if (linked !== venv) {
    rmSync(link, { recursive: true, force: true });
    mkdirSync(join(repoDir, '.tools'), { recursive: true });
    symlinkSync(venv, link);
  }
  return { bin: join(link, 'bin'), installMs };
}

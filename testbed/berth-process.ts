import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, spawnManaged, waitUntil, type ManagedProcess } from '../embedded/processes.ts';
import { tempDir } from './berth.ts';

export const repoRoot = fileURLToPath(new URL('../', import.meta.url));

export type BerthProcess = ManagedProcess & { metricsPort?: number };

/** How a worker names itself to Temporal (`<pid>@<host>`): activity and workflow task events carry it. */
export const identityOf = (proc: ManagedProcess) => `${proc.child.pid}@`;

/**
 * berth's processes as production runs them: each its own node, config from BERTH_CONFIG, ready when its log says
 * so. `stopAll()` stops them, last started first.
 */
export function berthProcesses(configFile: string, configEnv: Record<string, string>) {
  const started: BerthProcess[] = [];
  const spawn = async (name: string, args: string[], ready: string, env: Record<string, string> = {}): Promise<BerthProcess> => {
    const logFile = join(tempDir(name), `${name}.log`);
    const proc = spawnManaged(name, process.execPath, ['--import', 'tsx', ...args], logFile, { ...process.env, ...configEnv, ...env, BERTH_CONFIG: configFile });
    started.push(proc);
    await waitUntil(name, async () => readFileSync(logFile, 'utf8').includes(ready), { timeoutMs: 90_000, process: proc });
    return proc;
  };
  return {
    /**
     * `api/main.ts`; with the first admin's token when this start created it (not a terminal: the API writes it to
     * the file its log names).
     */
    async api(name = 'api', env: Record<string, string> = {}): Promise<BerthProcess & { token?: string }> {
      const proc = await spawn(name, [join(repoRoot, 'api/main.ts')], 'berth api on', env);
      const file = readFileSync(proc.logFile, 'utf8').match(/its token is in (\S+) /)?.[1];
      return Object.assign(proc, { token: file && readFileSync(file, 'utf8').trim() });
    },
    /** `workers/main.ts` with its flags, serving /metrics on a port of its own. */
    async worker(name: string, args: string[], env: Record<string, string> = {}): Promise<BerthProcess> {
      const metricsPort = await freePort();
      const proc = await spawn(name, [join(repoRoot, 'workers/main.ts'), ...args], 'berth worker polling', { BERTH_METRICS_PORT: String(metricsPort), ...env });
      return Object.assign(proc, { metricsPort });
    },
    async stopAll(): Promise<void> {
      for (const p of started.reverse()) await p.stop();
    },
  };
}

/** The workflow bundle of the tree at `root`, as the image builds it (workers/bundle.ts). */
export async function bundleWorkflows(out: string, root = repoRoot): Promise<string> {
  const bundler = spawnManaged('bundle', process.execPath, ['--import', 'tsx', join(root, 'workers/bundle.ts'), out], `${out}.log`);
  const [code] = await once(bundler.child, 'exit');
  if (code !== 0) throw new Error(`bundling ${root} failed:\n${readFileSync(`${out}.log`, 'utf8')}`);
  return out;
}

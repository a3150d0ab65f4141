import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const berth = fileURLToPath(new URL('../../bin/berth', import.meta.url));

/** Runs bin/berth against an API; resolves with its exit code and output, whatever the code. */
export function runCli(api: { url: string; token: string }, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(berth, args, { env: { ...process.env, BERTH_API: api.url, BERTH_TOKEN: api.token, ...env } }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

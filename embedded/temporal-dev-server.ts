import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { berthSearchAttributes } from '../contracts/search-attributes.ts';
import { spawnManaged, waitUntil, type ManagedProcess } from './processes.ts';

/** The Temporal CLI: `temporal` on PATH when present, else the one setup.sh built into .tools/. */
export function temporalCli(): string {
  const local = fileURLToPath(new URL('../.tools/bin/temporal', import.meta.url));
  const onPath = (process.env.PATH ?? '').split(':').some((dir) => dir && existsSync(`${dir}/temporal`));
  if (onPath) return 'temporal';
  if (existsSync(local)) return local;
  throw new Error('the Temporal CLI is not installed: run `bash scripts/setup.sh` (npm start and npm test do)');
}

export interface DevServerOptions {
  port: number;
  uiPort?: number;
  /** No UI when omitted. */
  headless?: boolean;
  dbFile?: string;
  logFile: string;
  /** The UI decrypts payloads through this endpoint (berth's API /codec). */
  uiCodecEndpoint?: string;
  /** Dynamic config values (`--dynamic-config-value KEY=JSON`), e.g. a real server's defaults where the dev server's differ. */
  dynamicConfig?: Record<string, string | number | boolean>;
}

const cliType = { KEYWORD: 'Keyword', KEYWORD_LIST: 'KeywordList', TEXT: 'Text', INT: 'Int', DOUBLE: 'Double', BOOL: 'Bool', DATETIME: 'Datetime' } as const;

/** `temporal server start-dev` on loopback, ready when the default namespace answers. */
export async function startTemporalDevServer(opts: DevServerOptions): Promise<ManagedProcess & { address: string }> {
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(opts.port), '--log-level', 'warn'];
  if (opts.headless) args.push('--headless');
  else if (opts.uiPort) args.push('--ui-port', String(opts.uiPort));
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  if (opts.uiCodecEndpoint) args.push('--ui-codec-endpoint', opts.uiCodecEndpoint);
  for (const key of berthSearchAttributes) args.push('--search-attribute', `${key.name}=${cliType[key.type]}`);
  for (const [key, value] of Object.entries(opts.dynamicConfig ?? {})) args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  const proc = spawnManaged('temporal', temporalCli(), args, opts.logFile);
  const address = `127.0.0.1:${opts.port}`;
  // A first start (fresh SQLite file) can take well over the SDK's 5 s readiness wait.
  await waitUntil(
    `Temporal dev server on ${address}`,
    async () => {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.describeNamespace({ namespace: 'default' });
        return true;
      } finally {
        await connection.close();
      }
    },
    { timeoutMs: 60_000, process: proc },
  );
  return Object.assign(proc, { address });
}

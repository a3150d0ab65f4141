import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { request } from 'undici';
import { httpPreamble, serverBlock, upstreamBlock, type ServerBlockOptions } from '../activities/endpoint/nginx/config.ts';
import { spawnManaged, waitUntil, type ManagedProcess } from './processes.ts';

export interface NginxEndpointOptions extends ServerBlockOptions {
  /** Written only when the upstream file does not exist yet: after a failover, a restart keeps the active side. */
  initialUpstream: string;
  /** Where the endpoint answers, to wait for it: `http://<listen>`. */
  url: string;
}

/**
 * Debian's nginx as the stable registry endpoint of HA groups, with a config of our own under `dir` (pid file,
 * logs, temp paths): berth then switches each group's upstream as it would a production nginx.
 */
export async function startNginx(opts: { dir: string; pidFile: string; endpoints: NginxEndpointOptions[] }): Promise<ManagedProcess> {
  mkdirSync(join(opts.dir, 'temp'), { recursive: true });
  for (const e of opts.endpoints) {
    mkdirSync(dirname(e.upstreamFile), { recursive: true });
    if (!existsSync(e.upstreamFile)) writeFileSync(e.upstreamFile, upstreamBlock(e.group, e.initialUpstream));
  }
  const temp = (what: string) => `${what}_temp_path ${join(opts.dir, 'temp', what)};`;
  const conf = `# written by berth (embedded/nginx.ts)
daemon off;
worker_processes 1;
pid ${opts.pidFile};
error_log ${join(opts.dir, 'error.log')} warn;
${process.getuid?.() === 0 ? 'user root;' : ''}
events { worker_connections 512; }
http {
  ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join('\n  ')}
  ${httpPreamble}
  ${opts.endpoints.map(serverBlock).join('\n')}
}
`;
  const confFile = join(opts.dir, 'nginx.conf');
  writeFileSync(confFile, conf);
  const proc = spawnManaged('nginx', 'nginx', ['-c', confFile, '-p', opts.dir], join(opts.dir, 'nginx.log'));
  for (const e of opts.endpoints) {
    await waitUntil(
      `nginx endpoint ${e.url}`,
      async () => {
        const res = await request(`${e.url}/v2/`);
        await res.body.dump();
        return res.headers['x-berth-upstream'] !== undefined || res.statusCode === 502;
      },
      { timeoutMs: 10_000, process: proc },
    );
  }
  return proc;
}

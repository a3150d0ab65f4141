import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { request } from 'undici';
import { httpPreamble, parseUpstreamBlock, serverBlock, upstreamBlock, type ServerBlockOptions } from '../activities/endpoint/nginx/config.ts';
import { spawnManaged, waitUntil, type ManagedProcess } from './processes.ts';

export interface NginxEndpointOptions extends ServerBlockOptions {
  /**
   * The group's registries and their `host:port`, primary first. The upstream file serves the primary when it does
   * not exist yet; else the side it names (after a failover, a restart keeps the active side), writes allowed.
   */
  sides: { registry: string; upstream: string }[];
  /** Where the endpoint answers, to wait for it: `http://<listen>`. */
  url: string;
}

/** The side an existing upstream file names (a file of berth 0.1 names only the address), else the primary. */
function activeSide(e: NginxEndpointOptions): NginxEndpointOptions['sides'][number] {
  const current = existsSync(e.upstreamFile) ? parseUpstreamBlock(readFileSync(e.upstreamFile, 'utf8')) : {};
  return e.sides.find((s) => s.registry === current.registry || s.upstream === current.upstream) ?? e.sides[0];
}

/**
 * Debian's nginx as the stable registry endpoint of HA groups, with a config of our own under `dir` (pid file,
 * logs, temp paths): berth then switches each group's upstream as it would a production nginx.
 */
export async function startNginx(opts: { dir: string; pidFile: string; endpoints: NginxEndpointOptions[] }): Promise<ManagedProcess> {
  mkdirSync(join(opts.dir, 'temp'), { recursive: true });
  for (const e of opts.endpoints) {
    mkdirSync(dirname(e.upstreamFile), { recursive: true });
    writeFileSync(e.upstreamFile, upstreamBlock(e.group, { ...activeSide(e), writesRefused: false }));
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

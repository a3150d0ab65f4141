import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { stringify } from 'yaml';
import { spawnManaged, waitUntil, type ManagedProcess } from './processes.ts';

export type RegistryAuth =
  | { htpasswd: { username: string; password: string } }
  | { token: { realm: string; service: string; issuer: string; rootCertBundle: string } };

export interface DockerRegistryOptions {
  name: string;
  port: number;
  /** Blobs, config and log live here; the same directory on a restart keeps the content. */
  dataDir: string;
  auth?: RegistryAuth;
  /** The registry binary: Debian's `docker-registry` (distribution 2.8) by default; CNCF Distribution v3's `registry` reads the same config. */
  command?: string;
}

export interface DockerRegistry extends ManagedProcess {
  url: string;
}

/**
 * One Debian `docker-registry` (CNCF distribution) process on loopback, with a config file of our own: the
 * package's default config points its htpasswd at a directory and would not start.
 */
export async function startDockerRegistry(opts: DockerRegistryOptions): Promise<DockerRegistry> {
  mkdirSync(join(opts.dataDir, 'storage'), { recursive: true });
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: join(opts.dataDir, 'storage') },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    // A fixed secret keeps upload sessions valid across a restart of the same registry.
    http: { addr: `127.0.0.1:${opts.port}`, secret: `berth-${opts.name}` },
  };
  if (opts.auth && 'htpasswd' in opts.auth) {
    const htpasswd = join(opts.dataDir, 'htpasswd');
    const { username, password } = opts.auth.htpasswd;
    writeFileSync(htpasswd, execFileSync('htpasswd', ['-Bbn', username, password]));
    config.auth = { htpasswd: { realm: `berth-${opts.name}`, path: htpasswd } };
  } else if (opts.auth && 'token' in opts.auth) {
    const t = opts.auth.token;
    config.auth = { token: { realm: t.realm, service: t.service, issuer: t.issuer, rootcertbundle: t.rootCertBundle } };
  }
  const configFile = join(opts.dataDir, 'config.yml');
  writeFileSync(configFile, stringify(config));
  const proc = spawnManaged(`registry ${opts.name}`, opts.command ?? 'docker-registry', ['serve', configFile], join(opts.dataDir, 'registry.log'));
  const url = `http://127.0.0.1:${opts.port}`;
  await waitUntil(
    `docker-registry ${opts.name} on ${url}`,
    async () => {
      const res = await request(`${url}/v2/`);
      await res.body.dump();
      return res.statusCode === 200 || res.statusCode === 401;
    },
    { timeoutMs: 15_000, process: proc },
  );
  return Object.assign(proc, { url });
}

import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { spawnManaged, waitUntil, type ManagedProcess } from './processes.ts';

export type RegistryAuth = { htpasswd: { username: string; password: string } } | { token: { realm: string; service: string; issuer: string; rootCertBundle: string } };

export interface DockerRegistryOptions {
  name: string;
  port: number;
  /** Blobs, config and log live here; the same directory on a restart keeps the content. */
  dataDir: string;
  auth?: RegistryAuth;
  /**
   * Which CNCF Distribution serves: Debian's docker-registry 2.8 (the default), or Distribution v3 (`registry`,
   * built into .tools/bin by `scripts/setup.sh test`: the tests hold berth to both).
   */
  version?: 2 | 3;
  /** Layer URLs (foreign layers) that manifests may carry: both versions refuse every URL unless allowed here. */
  allowLayerUrls?: string[];
  /** Serve https with this certificate and key (PEM files), as a registry deployed on its own does. */
  tls?: { certificate: string; key: string };
}

/** Distribution v3, as setup.sh links it. */
const distributionV3 = fileURLToPath(new URL('../.tools/bin/registry', import.meta.url));

export interface DockerRegistry extends ManagedProcess {
  url: string;
}

/**
 * One CNCF Distribution process on loopback (Debian's `docker-registry`, or v3), with a config file of our own: the
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
    http: { addr: `127.0.0.1:${opts.port}`, secret: `berth-${opts.name}`, ...(opts.tls && { tls: opts.tls }) },
    ...(opts.allowLayerUrls && { validation: { manifests: { urls: { allow: opts.allowLayerUrls } } } }),
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
  const command = opts.version === 3 ? distributionV3 : 'docker-registry';
  const proc = spawnManaged(`registry ${opts.name}`, command, ['serve', configFile], join(opts.dataDir, 'registry.log'));
  const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${opts.port}`;
  // Up is all this asks; whether its certificate is trusted is for the clients under test to find out.
  const dispatcher = opts.tls && new Agent({ connect: { rejectUnauthorized: false } });
  await waitUntil(
    `${opts.version === 3 ? 'Distribution v3' : 'docker-registry'} ${opts.name} on ${url}`,
    async () => {
      const res = await request(`${url}/v2/`, { dispatcher });
      await res.body.dump();
      return res.statusCode === 200 || res.statusCode === 401;
    },
    { timeoutMs: 15_000, process: proc },
  ).finally(() => dispatcher?.close());
  return Object.assign(proc, { url });
}

import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { RegistryClient } from '../activities/registry/client.ts';
import { parseConfig, type BerthConfig } from '../config/load.ts';
import { startDockerRegistry, type DockerRegistry, type DockerRegistryOptions, type RegistryAuth } from '../embedded/docker-registry.ts';
import { freePort } from '../embedded/processes.ts';
import { recordSecret } from './secrets.ts';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `berth-${prefix}-`));
}

export interface TestRegistry {
  name: string;
  url: string;
  port: number;
  dataDir: string;
  username?: string;
  password?: string;
  process?: DockerRegistry;
  auth?: RegistryAuth;
  /** Starts the registry (again) on the same port and data directory. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Describes a docker-registry on a free port; `start` brings it up. Basic auth with a random password by default;
 * `version`, `allowLayerUrls` and `tls` as for startDockerRegistry.
 */
export async function testRegistry(
  name: string,
  opts: { auth?: 'htpasswd' | 'none' | RegistryAuth; username?: string; password?: string } & Pick<DockerRegistryOptions, 'version' | 'allowLayerUrls' | 'tls'> = {},
): Promise<TestRegistry> {
  const port = await freePort();
  const username = opts.auth === 'none' ? undefined : (opts.username ?? 'berth');
  const password = opts.auth === 'none' ? undefined : (opts.password ?? randomBytes(12).toString('hex'));
  if (password) recordSecret(password);
  const auth: RegistryAuth | undefined = opts.auth === 'none' ? undefined : typeof opts.auth === 'object' ? opts.auth : { htpasswd: { username: username!, password: password! } };
  const reg: TestRegistry = {
    name,
    port,
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    dataDir: tempDir(`registry-${name}`),
    username,
    password,
    auth,
    async start() {
      reg.process = await startDockerRegistry({ name, port, dataDir: reg.dataDir, auth, version: opts.version, allowLayerUrls: opts.allowLayerUrls, tls: opts.tls });
    },
    async stop() {
      await reg.process?.stop();
    },
  };
  return reg;
}

export async function startedRegistry(name: string, opts?: Parameters<typeof testRegistry>[1]): Promise<TestRegistry> {
  const reg = await testRegistry(name, opts);
  await reg.start();
  return reg;
}

export interface ConfigEntry {
  registry: TestRegistry;
  idc: string;
  parent?: string;
  /** Override the URL berth uses (for example a proxy in front of the registry). */
  url?: string;
  /** Override the password berth is given (for a wrong-password test). */
  password?: string;
  kind?: 'distribution' | 'harbor';
  /** Token services on other hosts that may receive the registry's credentials. */
  trustedTokenRealms?: string[];
}

/**
 * A berth config for a test: one IDC per entry, task queues unique to this test so parallel test files sharing a
 * Temporal server never steal each other's tasks. Passwords go by env var reference, as in production.
 */
export function testConfig(
  id: string,
  temporalAddress: string,
  entries: ConfigEntry[],
  copy: Partial<BerthConfig['copy']> = {},
  /** More of berth.yaml, as written there (syncRules, sync). */
  more: Record<string, unknown> = {},
): { config: BerthConfig; file: string; env: Record<string, string> } {
  const env: Record<string, string> = {};
  const raw = {
    temporal: { address: temporalAddress },
    taskQueues: { main: `berth-main-${id}`, idcPrefix: `berth-idc-${id}-` },
    copy,
    // Several registries may share an IDC: the first entry of an IDC names its parent.
    idcs: entries.filter((e, i) => entries.findIndex((o) => o.idc === e.idc) === i).map((e) => ({ name: e.idc, ...(e.parent ? { parent: e.parent } : {}) })),
    registries: entries.map((e) => {
      const envVar = `BERTH_TEST_PASSWORD_${id}_${e.registry.name}`.toUpperCase().replace(/[^A-Z0-9_]/g, '_');
      const password = e.password ?? e.registry.password;
      if (password !== undefined) env[envVar] = password;
      return {
        name: e.registry.name,
        idc: e.idc,
        url: e.url ?? e.registry.url,
        ...(e.kind ? { kind: e.kind } : {}),
        ...(e.trustedTokenRealms ? { trustedTokenRealms: e.trustedTokenRealms } : {}),
        ...(e.registry.username ? { credentials: { username: e.registry.username, passwordEnv: envVar } } : {}),
      };
    }),
    ...more,
  };
  Object.assign(process.env, env);
  const file = join(tempDir(`config-${id}`), 'berth.yaml');
  writeFileSync(file, stringify(raw));
  return { config: parseConfig(stringify(raw), file), file, env };
}

/** berth's registry client logged in to a test registry, directly or through `url` (a proxy). Close it after use. */
export function registryClient(reg: TestRegistry, opts: { url?: string; chunkSize?: number } = {}): RegistryClient {
  const credentials = reg.username ? { username: reg.username, password: reg.password! } : undefined;
  return new RegistryClient({ name: reg.name, baseUrl: opts.url ?? reg.url, credentials, chunkSize: opts.chunkSize });
}

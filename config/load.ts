import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { configSchema, type BerthConfig, type Cluster, type RegistryConfig } from './schema.ts';

export type { BerthConfig, Cluster, HaGroup, RegistryConfig, SyncFilter, SyncRule } from './schema.ts';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid config ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** `['registries', 1, 'url']` -> `registries[1].url`: the way a person finds the spot in the YAML. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '');
}

function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((i) => `${formatPath(i.path) || '(top level)'}: ${i.message}`);
}

/** Parses and validates config text. Relative passwordFile paths are taken relative to `baseDir`. */
export function parseConfig(text: string, file: string, baseDir = dirname(file)): BerthConfig {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0)
    throw new ConfigError(
      file,
      doc.errors.map((e) => e.message),
    );
  const raw = doc.toJS() ?? {};
  const env = process.env;
  if (typeof raw === 'object' && (env.TEMPORAL_ADDRESS || env.TEMPORAL_NAMESPACE)) {
    raw.temporal = { ...raw.temporal };
    if (env.TEMPORAL_ADDRESS) raw.temporal.address = env.TEMPORAL_ADDRESS;
    if (env.TEMPORAL_NAMESPACE) raw.temporal.namespace = env.TEMPORAL_NAMESPACE;
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(file, formatIssues(parsed.error.issues));
  const config = parsed.data;
  if (config.inventory.sqliteFile !== undefined) config.inventory.sqliteFile = resolve(baseDir, config.inventory.sqliteFile);
  const db = config.inventory.postgres;
  if (db?.passwordFile !== undefined) db.passwordFile = resolve(baseDir, db.passwordFile);
  for (const k of config.encryption?.keys ?? []) if (k.key.file !== undefined) k.key.file = resolve(baseDir, k.key.file);
  for (const c of config.clusters) {
    const key = c.ssh.privateKey;
    if (key.file !== undefined) key.file = resolve(baseDir, key.file);
  }
  for (const g of config.haGroups) {
    const n = g.endpoint.nginx;
    n.upstreamFile = resolve(baseDir, n.upstreamFile);
    n.pidFile = resolve(baseDir, n.pidFile);
    if (n.pushLog !== undefined) n.pushLog = resolve(baseDir, n.pushLog);
  }
  for (const r of config.registries) {
    const f = r.credentials?.passwordFile;
    if (f !== undefined && !isAbsolute(f)) r.credentials!.passwordFile = resolve(baseDir, f);
  }
  return config;
}

export function loadConfig(file: string): BerthConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as Error).message}`]);
  }
  return parseConfig(text, file);
}

export function findRegistry(config: BerthConfig, name: string): RegistryConfig | undefined {
  return config.registries.find((r) => r.name === name);
}

/**
 * The registry a cluster's machines pull from (their IDC's first) and the host:port they reach it at; `insecure`
 * when the machines' engines must be told to speak plain HTTP to that address (an http URL reached elsewhere).
 */
export function machineRegistry(config: BerthConfig, cluster: Cluster): { registry: RegistryConfig; host: string; url: string; insecure: boolean } | undefined {
  const registry = config.registries.find((r) => r.idc === cluster.idc);
  if (!registry) return undefined;
  const url = new URL(registry.url);
  const host = cluster.registryAddress ?? url.host;
  return { registry, host, url: `${url.protocol}//${host}`, insecure: cluster.registryAddress !== undefined && url.protocol === 'http:' };
}

/** The task queue served by the workers inside an IDC. */
export function idcTaskQueue(config: BerthConfig, idc: string): string {
  return `${config.taskQueues.idcPrefix}${idc}`;
}

/**
 * Resolves a name given by a user, an IDC or a registry, to a registry. An IDC stands for its first listed
 * registry.
 */
export function resolveRegistryName(config: BerthConfig, name: string): RegistryConfig | undefined {
  return findRegistry(config, name) ?? config.registries.find((r) => r.idc === name);
}

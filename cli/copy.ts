// `berth copy SRC DST`: one image, every platform and its referrers, copied by the engine the workflows use, in
// this process and without Temporal (like `crane copy`). An end is `<registry or IDC in berth.yaml>/<repo>[:tag|@digest]`
// or `[http[s]://]<host[:port]>/<repo>[:tag|@digest]`; passwords come by reference, never on the command line.
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Credentials } from '../activities/registry/auth.ts';
import { RegistryClient } from '../activities/registry/client.ts';
import { copyImage, type CopyImageResult, type CopyProgress } from '../activities/registry/copy-image.ts';
import { RegistryError } from '../activities/registry/errors.ts';
import { parseImageReference } from '../activities/registry/reference.ts';
import { readSecret } from '../config/secrets.ts';
import { CliError, exitCodes } from './errors.ts';

export const copyUsage = `  copy <src> <dst> [--src-user <u> --src-password-env <VAR>|--src-password-file <path>] [--dst-user ...]
       [--concurrency <n>] [--chunk-size-mib <n>] [--attempts <n>]     (BERTH_CONFIG names berth.yaml)
       an end: <registry or IDC of berth.yaml>/<repo>[:tag|@digest], or [http[s]://]<host[:port]>/<repo>[:tag|@digest]`;

const options = {
  json: { type: 'boolean', default: false },
  'src-user': { type: 'string' },
  'src-password-env': { type: 'string' },
  'src-password-file': { type: 'string' },
  'dst-user': { type: 'string' },
  'dst-password-env': { type: 'string' },
  'dst-password-file': { type: 'string' },
  // When not given: berth.yaml's copy.blobConcurrency and copy.chunkSizeMiB if an end names one of its registries,
  // else the defaults of those fields
  concurrency: { type: 'string' },
  'chunk-size-mib': { type: 'string' },
  attempts: { type: 'string', default: '5' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values'];

interface End {
  client: RegistryClient;
  repository: string;
  reference: string;
}

function usage(message: string): CliError {
  return new CliError(`${message}\nusage:\n${copyUsage}`, exitCodes.usage);
}

function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(value)) throw usage(`${flag} must be a positive whole number, not "${value}"`);
  return Number(value);
}

/** Credentials of a host given on the command line: a user and where the password is. */
function flagCredentials(values: Values, side: 'src' | 'dst'): Credentials | undefined {
  const username = values[`${side}-user`];
  const env = values[`${side}-password-env`];
  const file = values[`${side}-password-file`];
  if (username === undefined && env === undefined && file === undefined) return undefined;
  if (username === undefined) throw usage(`--${side}-password-env/--${side}-password-file need --${side}-user`);
  if ((env === undefined) === (file === undefined)) throw usage(`--${side}-user needs exactly one of --${side}-password-env or --${side}-password-file`);
  try {
    return { username, password: readSecret({ env, file }, `the password of --${side}-user ${username}`) };
  } catch (err) {
    throw usage((err as Error).message);
  }
}

/** `localhost:5000`, `registry.example`, `[::1]:5000`: what Docker takes for a host rather than a path. */
const isHost = (name: string) => name === 'localhost' || /[.:[]/.test(name);
const isLoopback = (host: string) => /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/.test(host);

type Loaded = Awaited<ReturnType<typeof loadBerthConfig>>;

async function loadBerthConfig() {
  // Loaded only when an end names a registry: the YAML parser and the schema cost a fresh process time.
  const [{ loadConfig, resolveRegistryName }, { configPath }, { resolveCredentials }] = await Promise.all([import('../config/load.ts'), import('../config/path.ts'), import('../activities/registry/credentials.ts')]);
  const file = configPath();
  try {
    return { file, config: loadConfig(file), resolveRegistryName, resolveCredentials };
  } catch (err) {
    throw new CliError((err as Error).message, exitCodes.usage);
  }
}

async function resolveEnd(text: string, side: 'src' | 'dst', values: Values, config: () => Promise<Loaded>): Promise<{ end: End; fromConfig?: Loaded }> {
  const scheme = /^(https?):\/\//.exec(text);
  const rest = scheme ? text.slice(scheme[0].length) : text;
  const slash = rest.indexOf('/');
  if (slash <= 0) throw usage(`${side} "${text}" names no repository: <registry>/<repository>[:tag|@digest]`);
  const [registry, path] = [rest.slice(0, slash), rest.slice(slash + 1)];
  let image;
  try {
    image = parseImageReference(path);
  } catch (err) {
    throw usage(`${side} "${text}": ${(err as Error).message}`);
  }
  const make = (name: string, baseUrl: string, credentials: Credentials | undefined, chunkSizeMiB?: number, trustedTokenRealms?: string[]) => ({
    client: new RegistryClient({ name, baseUrl, credentials, trustedTokenRealms, chunkSize: chunkSizeMiB && chunkSizeMiB * 1024 * 1024 }),
    ...image,
  });
  if (scheme || isHost(registry)) {
    const url = `${scheme?.[1] ?? (isLoopback(registry) ? 'http' : 'https')}://${registry}`;
    return { end: make(registry, url, flagCredentials(values, side), positiveInt(values['chunk-size-mib'], '--chunk-size-mib')) };
  }
  const loaded = await config();
  const found = loaded.resolveRegistryName(loaded.config, registry);
  if (!found) throw new CliError(`${side}: "${registry}" is neither a host nor a registry or IDC of ${loaded.file}`, exitCodes.notFound);
  if (values[`${side}-user`] !== undefined) throw usage(`--${side}-user: ${registry} takes its credentials from ${loaded.file}`);
  const chunkSizeMiB = positiveInt(values['chunk-size-mib'], '--chunk-size-mib') ?? loaded.config.copy.chunkSizeMiB;
  return { end: make(found.name, found.url, loaded.resolveCredentials(found.name, found.credentials), chunkSizeMiB, found.trustedTokenRealms), fromConfig: loaded };
}

const exitCodeOf: Record<RegistryError['type'], number> = {
  RegistryAuthError: exitCodes.denied,
  ImageNotFound: exitCodes.notFound,
  DigestMismatch: exitCodes.failed,
  RegistryRejected: exitCodes.failed,
  RegistryReadOnly: exitCodes.denied,
  RegistryUnavailable: exitCodes.unavailable,
};

/**
 * Copies, retrying what is transient as the copy activity does: a retry skips the blobs already there and
 * continues a chunked upload from what the target holds.
 */
async function copyWithRetries(src: End, dst: End, concurrency: number, attempts: number): Promise<CopyImageResult> {
  let progress: CopyProgress | undefined;
  for (let attempt = 1; ; attempt++) {
    try {
      return await copyImage({
        source: src.client,
        sourceRepository: src.repository,
        target: dst.client,
        targetRepository: dst.repository,
        reference: src.reference,
        targetReference: dst.reference,
        concurrency,
        resumeFrom: progress,
        onProgress: (p) => (progress = p),
      });
    } catch (err) {
      if (!(err instanceof RegistryError)) throw err;
      if (!err.retryable || attempt >= attempts) throw new CliError(`${err.type}: ${err.message}`, exitCodeOf[err.type]);
      const waitMs = err.opts.retryAfterMs ?? Math.min(60_000, 1000 * 2 ** (attempt - 1));
      console.error(`berth copy: attempt ${attempt} failed (${err.message}); retrying in ${Math.round(waitMs / 1000)} s`);
      await sleep(waitMs);
    }
  }
}

export async function copyCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true });
  } catch (err) {
    throw usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 2) throw usage('copy needs a source and a destination');
  let loaded: Promise<Loaded> | undefined;
  const config = () => (loaded ??= loadBerthConfig());
  const [src, dst] = [await resolveEnd(positionals[0], 'src', values, config), await resolveEnd(positionals[1], 'dst', values, config)];
  const concurrency = positiveInt(values.concurrency, '--concurrency') ?? (src.fromConfig ?? dst.fromConfig)?.config.copy.blobConcurrency ?? 4;
  const started = performance.now();
  try {
    const r = await copyWithRetries(src.end, dst.end, concurrency, positiveInt(values.attempts, '--attempts')!);
    const seconds = (performance.now() - started) / 1000;
    if (values.json) console.log(JSON.stringify({ ...r, durationMs: Math.round(seconds * 1000) }));
    else {
      console.log(`${positionals[1]}: ${r.digest} (${r.manifests} manifests, ${r.referrers} referrers)`);
      console.log(`${r.blobsCopied} blobs copied (${(r.bytesCopied / 1e6).toFixed(1)} MB), ${r.blobsSkipped} already there, ${r.blobsMounted} mounted, in ${seconds.toFixed(2)} s`);
    }
    return exitCodes.ok;
  } finally {
    await Promise.all([src.end.client.close(), dst.end.client.close()]);
  }
}

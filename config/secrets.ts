import { readFileSync } from 'node:fs';

/** A secret by reference, as berth.yaml names it: the env var or the file that holds it. */
export interface SecretRef {
  env?: string;
  file?: string;
}

/** Reads a referenced secret where it is used (a worker, the API); `what` names it in errors. */
export function readSecret(ref: SecretRef, what: string): string {
  if (ref.env !== undefined) {
    const value = process.env[ref.env];
    if (value === undefined) throw new Error(`${what} is read from env var ${ref.env}, which this process does not have`);
    return value;
  }
  try {
    return readFileSync(ref.file!, 'utf8').replace(/\r?\n$/, '');
  } catch (err) {
    throw new Error(`cannot read ${what} from ${ref.file}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The values of every secret berth.yaml references that this process can read (registry passwords, SSH and cloud
 * keys, payload keys, ...): found by the two shapes a reference has, `{env}`/`{file}` and `{passwordEnv}`/`{passwordFile}`,
 * so that a reference added to the schema later is covered too. One that does not resolve here is left out.
 */
export function knownSecrets(config: unknown): string[] {
  const found = new Set<string>();
  const visit = (value: unknown) => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (typeof value !== 'object' || value === null) return;
    const o = value as Record<string, unknown>;
    const ref = Object.keys(o).every((k) => k === 'env' || k === 'file') ? (o as SecretRef) : { env: o.passwordEnv, file: o.passwordFile };
    if (typeof ref.env === 'string' || typeof ref.file === 'string') {
      try {
        found.add(readSecret(ref as SecretRef, 'a secret'));
      } catch {
        // Not readable by this process: it cannot leak from here either.
      }
    }
    Object.values(o).forEach(visit);
  };
  visit(config);
  return [...found];
}

/** Shorter values would blot out ordinary words: they are not secrets worth the name. */
const minSecretLength = 6;

/**
 * A function that replaces every known secret in a text with `[redacted]`; a multi-line secret (a private key)
 * also line by line, since output may hold a part of it.
 */
export function secretRedactor(secrets: string[]): (text: string) => string {
  const parts = secrets
    .flatMap((s) => [s, ...s.split(/\r?\n/)])
    .map((s) => s.trim())
    .filter((s) => s.length >= minSecretLength);
  // Longest first: a secret that contains another is replaced whole.
  const unique = [...new Set(parts)].sort((a, b) => b.length - a.length);
  return (text) => unique.reduce((t, s) => t.split(s).join('[redacted]'), text);
}

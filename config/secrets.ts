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
    throw new Error(`cannot read ${what} from ${ref.file}: ${(err as Error).message}`);
  }
}

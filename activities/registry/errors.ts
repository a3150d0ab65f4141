/**
 * What went wrong talking to a registry, classified by what a retry can do about it. The activity layer turns
 * `retryable: false` into a non-retryable Temporal failure of the same type.
 */
export type RegistryErrorType =
  | 'RegistryAuthError' // 401/403: credentials are wrong or lack permission; a retry will not fix it
  | 'ImageNotFound' // the source has no such manifest
  | 'DigestMismatch' // content does not match its digest: corruption in the source or in transit
  | 'RegistryRejected' // another 4xx: the registry refuses the request as made
  | 'RegistryUnavailable'; // 5xx, 429, connection errors, timeouts: worth retrying

export class RegistryError extends Error {
  constructor(
    readonly type: RegistryErrorType,
    message: string,
    readonly opts: { status?: number; code?: string; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = type;
  }

  get retryable(): boolean {
    return this.type === 'RegistryUnavailable';
  }
}

/** The registry lost or refuses an upload session (expired, restarted, or at another offset than we thought). */
export function isLostUpload(status: number, code: string | undefined): boolean {
  return code === 'BLOB_UPLOAD_UNKNOWN' || code === 'BLOB_UPLOAD_INVALID' || status === 416;
}

/** Parses Retry-After (seconds or an HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/**
 * Network-level failures (refused, reset, timed out) are transient by nature. A request body longer or shorter
 * than its declared length is not: the blob does not match its descriptor.
 */
export function asRegistryError(err: unknown, what: string): RegistryError {
  if (err instanceof RegistryError) return err;
  const e = err as { code?: string; message?: string; name?: string };
  if (e?.code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
    return new RegistryError('DigestMismatch', `${what}: the blob's length differs from its descriptor (${e.message})`, { cause: err });
  }
  return new RegistryError('RegistryUnavailable', `${what}: ${e?.code ?? e?.name ?? 'error'} ${e?.message ?? String(err)}`.trim(), { cause: err });
}

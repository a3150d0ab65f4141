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

/**
 * Classifies an answer nobody expected from a registry or Harbor: `message` already says what was asked, of whom,
 * and what came back; `who` names the login refused on a 401/403.
 */
function httpFailure(status: number, code: string | undefined, message: string, ctx: { registry: string; who: string; retryAfter?: string }): RegistryError {
  if (status === 401 || status === 403) return new RegistryError('RegistryAuthError', `${message} — ${ctx.registry} refused ${ctx.who}`, { status, code });
  if (code === 'DIGEST_INVALID' || code === 'SIZE_INVALID') return new RegistryError('DigestMismatch', message, { status, code });
  // An upload session the registry lost or refuses (expired, restarted) is fixed by a fresh upload on retry.
  if (isLostUpload(status, code) || status === 429 || status >= 500 || status === 408) {
    return new RegistryError('RegistryUnavailable', message, { status, code, retryAfterMs: parseRetryAfter(ctx.retryAfter) });
  }
  return new RegistryError('RegistryRejected', message, { status, code });
}

/** An HTTP answer as undici gives it: enough to read the error body registries and Harbor send. */
interface FailedResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: { text(): Promise<string> };
}

/**
 * Turns an unexpected answer into a classified error with the server's own error code and message (registries
 * and Harbor both answer `{"errors":[{"code","message"}]}`).
 */
export async function responseFailure(res: FailedResponse, what: string, registry: string, credentials: { username: string } | undefined): Promise<RegistryError> {
  const text = await res.body.text().catch(() => '');
  let first: { code?: string; message?: string } | undefined;
  try {
    first = (JSON.parse(text) as { errors?: { code?: string; message?: string }[] }).errors?.[0];
  } catch {
    // Not JSON (a proxy's error page, an empty body): the status says enough.
  }
  const detail = first ? ` ${first.code}: ${first.message}` : text ? ` ${text.slice(0, 200)}` : '';
  const retryAfter = res.headers['retry-after'];
  const who = credentials ? `user "${credentials.username}"` : 'anonymous access (no credentials configured)';
  return httpFailure(res.statusCode, first?.code, `${what} on ${registry}: HTTP ${res.statusCode}${detail}`, {
    registry,
    who,
    retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
  });
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

import { ClassifiedError } from '../../contracts/classified-error.ts';

/**
 * What went wrong talking to a registry, classified by what a retry can do about it. The activity layer turns
 * `retryable: false` into a non-retryable Temporal failure of the same type.
 */
export type RegistryErrorType =
  | 'RegistryAuthError' // 401/403: credentials are wrong or lack permission; a retry will not fix it
  | 'ImageNotFound' // the source has no such manifest
  | 'DigestMismatch' // content does not match its digest: corruption in the source or in transit
  | 'RegistryRejected' // another 4xx, or a 5xx whose errors say the request is wrong: refused as made
  | 'RegistryReadOnly' // a fenced registry (Harbor's read-only mode) refuses every write until the fence is lifted
  | 'RegistryUnavailable'; // 5xx, 429, connection errors, timeouts: worth retrying

export class RegistryError extends ClassifiedError<RegistryErrorType> {
  constructor(
    type: RegistryErrorType,
    message: string,
    readonly opts: { status?: number; code?: string; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(type, message, { cause: opts.cause });
  }

  override get retryable(): boolean {
    return this.type === 'RegistryUnavailable';
  }

  override get retryAfterMs(): number | undefined {
    return this.opts.retryAfterMs;
  }
}

/** The registry lost or refuses an upload session (expired, restarted, or at another offset than we thought). */
export function isLostUpload(status: number, code: string | undefined): boolean {
  return code === 'BLOB_UPLOAD_UNKNOWN' || code === 'BLOB_UPLOAD_INVALID' || status === 416;
}

/** An image as people write it: `repo:tag`, or `repo@sha256:…` for a digest. */
export function formatImage(repository: string, reference: string): string {
  return `${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
}

/** One entry of a registry's or Harbor's `{"errors":[{"code","message","detail"}]}`. */
interface ErrorEntry {
  code?: string;
  message?: string;
  detail?: unknown;
}

/**
 * Codes that say the request itself is wrong: a registry that sends them with a 5xx (Distribution answers a
 * manifest with a refused layer URL with 500 UNKNOWN, then MANIFEST_BLOB_UNKNOWN) gives the same answer to a retry.
 */
const permanentCodes = new Set(['MANIFEST_INVALID', 'MANIFEST_BLOB_UNKNOWN', 'MANIFEST_UNVERIFIED', 'BLOB_UNKNOWN', 'NAME_INVALID', 'TAG_INVALID', 'UNSUPPORTED']);

/** Harbor's answer to a write while it is read-only (fenced): 403 DENIED, "The system is in read only mode...". */
const readOnlyMessage = /read[- ]only/i;

/**
 * Classifies an answer nobody expected from a registry or Harbor: `message` already says what was asked, of whom,
 * and what came back (every error entry); `who` names the login refused on a 401/403.
 */
function httpFailure(status: number, entries: ErrorEntry[], message: string, ctx: { registry: string; who: string; retryAfter?: string }): RegistryError {
  const codes = entries.flatMap((e) => (e.code ? [e.code] : []));
  // The code that says most: UNKNOWN (Distribution's 500s lead with it) only when there is no other.
  const code = codes.find((c) => c !== 'UNKNOWN') ?? codes[0];
  if (status === 403 && entries.some((e) => e.code === 'DENIED' && readOnlyMessage.test(e.message ?? ''))) {
    return new RegistryError('RegistryReadOnly', `${message} — ${ctx.registry} is read-only (fenced): it refuses writes whatever the credentials`, { status, code });
  }
  if (status === 401 || status === 403) return new RegistryError('RegistryAuthError', `${message} — ${ctx.registry} refused ${ctx.who}`, { status, code });
  if (codes.includes('DIGEST_INVALID') || codes.includes('SIZE_INVALID')) return new RegistryError('DigestMismatch', message, { status, code });
  // An upload session the registry lost or refuses (expired, restarted) is fixed by a fresh upload on retry.
  if (isLostUpload(status, code) || codes.some((c) => isLostUpload(status, c))) {
    return new RegistryError('RegistryUnavailable', message, { status, code });
  }
  if (codes.some((c) => permanentCodes.has(c))) return new RegistryError('RegistryRejected', message, { status, code });
  if (status === 429 || status >= 500 || status === 408) {
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

/** The `errors` of a registry's or Harbor's error body; none when it is not one (a proxy's page, an empty body). */
function errorEntries(text: string): ErrorEntry[] {
  try {
    const errors = (JSON.parse(text) as { errors?: unknown }).errors;
    return Array.isArray(errors) ? errors.filter((e): e is ErrorEntry => typeof e === 'object' && e !== null) : [];
  } catch {
    return [];
  }
}

/** `CODE: message (detail)` for each entry: Distribution names each unknown blob only in `detail`. */
function describeEntries(entries: ErrorEntry[]): string {
  return entries
    .map(({ code, message, detail }) => {
      const shown = typeof detail === 'string' ? detail : JSON.stringify(detail ?? {});
      const extra = shown && shown !== '{}' && shown !== '[]' && shown !== 'null' ? ` (${shown.length > 300 ? `${shown.slice(0, 300)}…` : shown})` : '';
      return `${code ?? 'error'}: ${message ?? ''}${extra}`;
    })
    .join('; ');
}

/**
 * Turns an unexpected answer into a classified error with every one of the server's own errors (registries and
 * Harbor both answer `{"errors":[{"code","message","detail"}]}`).
 */
export async function responseFailure(res: FailedResponse, what: string, registry: string, credentials: { username: string } | undefined): Promise<RegistryError> {
  const text = await res.body.text().catch(() => '');
  const entries = errorEntries(text);
  const detail = entries.length ? ` ${describeEntries(entries)}` : text ? ` ${text.slice(0, 200)}` : '';
  const retryAfter = res.headers['retry-after'];
  const who = credentials ? `user "${credentials.username}"` : 'anonymous access (no credentials configured)';
  return httpFailure(res.statusCode, entries, `${what} on ${registry}: HTTP ${res.statusCode}${detail}`, {
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

import { createHash } from 'node:crypto';
import { basicAuthorization, onRegistryHost, parseChallenge, realmRefusal, type Credentials } from './auth.ts';
import { asRegistryError, formatImage, isLostUpload, responseFailure, RegistryError } from './errors.ts';
import { header as headerOf, HttpAgent, HttpError, type ChunkStream, type HttpResponse, type StreamedBody } from './http.ts';
import { manifestAccept, MediaType } from './media-types.ts';
import { isRepositoryName, isTag } from './reference.ts';
import { throttled, type TokenBucket } from './throttle.ts';

type Response = HttpResponse;

export interface RegistryClientOptions {
  /** Used in error messages: the registry's name in berth.yaml. */
  name: string;
  baseUrl: string;
  credentials?: Credentials;
  /** Token realms on other hosts than the registry's that may receive its credentials (by origin). */
  trustedTokenRealms?: string[];
  /** Blobs larger than this are uploaded in PATCH chunks of this size; smaller ones in a single PUT. */
  chunkSize?: number;
  /** One token per request sent: a requests-per-second limit on this registry. */
  requests?: TokenBucket;
  /** One token per blob byte read: a bandwidth limit on the link this client reads over. */
  downloads?: TokenBucket;
}

export interface Manifest {
  mediaType: string;
  digest: string;
  bytes: Buffer;
}

export interface BlobRef {
  digest: string;
  size: number;
}

/** An upload session and how many bytes of it the registry has accepted. */
export interface UploadCheckpoint {
  location: string;
  offset: number;
}

function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * A client for the OCI distribution API (what docker-registry, Harbor and Docker Hub serve): manifests, blobs,
 * uploads and mounts, with Basic auth or the Bearer token challenge flow. Bodies are streamed, never buffered,
 * except manifests (small by nature).
 */
export class RegistryClient {
  readonly name: string;
  readonly baseUrl: string;
  private readonly credentials?: Credentials;
  private readonly trustedTokenRealms: string[];
  private readonly chunkSize: number;
  private readonly http: HttpAgent;
  private readonly limits: Pick<RegistryClientOptions, 'requests' | 'downloads'>;
  private scheme: 'none' | 'basic' | 'bearer' = 'none';
  private tokenService?: { realm: string; service?: string };
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();

  constructor(opts: RegistryClientOptions) {
    this.name = opts.name;
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.credentials = opts.credentials;
    this.trustedTokenRealms = opts.trustedTokenRealms ?? [];
    this.chunkSize = opts.chunkSize ?? 64 * 1024 * 1024;
    this.limits = { requests: opts.requests, downloads: opts.downloads };
    // No cap on connections per registry: a copy holds a read on one registry while it writes to another, and
    // copies in opposite directions in one worker would otherwise wait on each other's connections forever.
    // Concurrency is bounded by the workers' activity slots times copy.blobConcurrency.
    this.http = new HttpAgent({ connectTimeoutMs: 10_000, timeoutMs: 120_000, maxRedirects: 3 });
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  /** GET /v2/: reachable, speaks the API, and accepts our credentials. */
  async ping(signal?: AbortSignal): Promise<void> {
    const res = await this.send({ method: 'GET', path: '/v2/', scopes: [], what: 'ping', signal });
    await this.expect(res, [200], 'ping');
  }

  async getManifest(repository: string, reference: string, signal?: AbortSignal): Promise<Manifest> {
    const what = `get manifest ${formatImage(repository, reference)}`;
    const res = await this.send({ method: 'GET', path: `/v2/${repository}/manifests/${reference}`, headers: { accept: manifestAccept }, scopes: [pull(repository)], what, signal });
    if (res.statusCode === 404) {
      await res.body.dump();
      throw new RegistryError('ImageNotFound', `${formatImage(repository, reference)} does not exist on ${this.name}`, { status: 404 });
    }
    if (res.statusCode !== 200) throw await this.failure(res, what);
    const bytes = await res.body.bytes();
    const digest = sha256Digest(bytes);
    const claimed = header(res, 'docker-content-digest');
    const expected = reference.startsWith('sha256:') ? reference : claimed;
    if (expected && expected !== digest) {
      throw new RegistryError('DigestMismatch', `manifest ${repository}@${expected} on ${this.name} hashes to ${digest}`);
    }
    const mediaType = (JSON.parse(bytes.toString('utf8')).mediaType as string | undefined) ?? header(res, 'content-type')?.split(';')[0] ?? '';
    return { mediaType, digest, bytes };
  }

  /** The digest a tag or digest resolves to, or null when the registry has no such manifest. */
  async headManifest(repository: string, reference: string, signal?: AbortSignal): Promise<string | null> {
    const what = `head manifest ${formatImage(repository, reference)}`;
    const res = await this.send({ method: 'HEAD', path: `/v2/${repository}/manifests/${reference}`, headers: { accept: manifestAccept }, scopes: [pull(repository)], what, signal });
    if (res.statusCode === 404) {
      await res.body.dump();
      return null;
    }
    await this.expect(res, [200], what);
    const digest = header(res, 'docker-content-digest');
    if (digest) return digest;
    // Not every registry sends the digest on HEAD: fall back to fetching and hashing the manifest.
    return (await this.getManifest(repository, reference, signal)).digest;
  }

  async putManifest(repository: string, reference: string, manifest: Manifest, signal?: AbortSignal): Promise<string> {
    const what = `put manifest ${formatImage(repository, reference)}`;
    const res = await this.send({
      method: 'PUT',
      path: `/v2/${repository}/manifests/${reference}`,
      headers: { 'content-type': manifest.mediaType },
      body: manifest.bytes,
      scopes: [push(repository)],
      what,
      signal,
    });
    await this.expect(res, [200, 201], what);
    return header(res, 'docker-content-digest') ?? manifest.digest;
  }

  /** Deletes a manifest by digest (the registry must allow deletes; docker-registry: storage.delete.enabled). */
  async deleteManifest(repository: string, digest: string, signal?: AbortSignal): Promise<void> {
    const what = `delete manifest ${repository}@${digest}`;
    const res = await this.send({ method: 'DELETE', path: `/v2/${repository}/manifests/${digest}`, scopes: [`repository:${repository}:delete`], what, signal });
    if (res.statusCode === 404) return void (await res.body.dump());
    await this.expect(res, [202, 200], what);
  }

  /** Every repository in the catalog (after `after`, when given), page by page (`n`, then the `Link` header's `last`). */
  listRepositories(pageSize = 1000, signal?: AbortSignal, after?: string): AsyncGenerator<string[]> {
    const last = after === undefined ? '' : `&last=${encodeURIComponent(after)}`;
    return this.pages(`/v2/_catalog?n=${pageSize}${last}`, 'repositories', ['registry:catalog:*'], 'list catalog', signal);
  }

  /** Every tag of a repository, page by page; none when the repository does not exist. */
  listTags(repository: string, pageSize = 1000, signal?: AbortSignal): AsyncGenerator<string[]> {
    return this.pages(`/v2/${repository}/tags/list?n=${pageSize}`, 'tags', [pull(repository)], `list tags of ${repository}`, signal);
  }

  /**
   * The Referrers API's index documents for a digest, every page, or null where the registry has no such API: it
   * then answers a plain 404, which the spec forbids a registry with the API to do, even for a digest it does not hold.
   */
  async getReferrers(repository: string, digest: string, signal?: AbortSignal): Promise<Buffer[] | null> {
    const what = `list referrers of ${repository}@${digest}`;
    const pages: Buffer[] = [];
    for (let path: string | undefined = `/v2/${repository}/referrers/${digest}`; path !== undefined;) {
      const res = await this.send({ method: 'GET', path, headers: { accept: MediaType.ociIndex }, scopes: [pull(repository)], what, signal });
      if (res.statusCode === 404) {
        // A registry with the API may still answer 404 for a repository it does not know (go-containerregistry's
        // NAME_UNKNOWN): an error body of its own means the API is there and lists nothing.
        const withApi = /"errors"\s*:/.test(await res.body.text());
        return withApi ? [] : null;
      }
      if (res.statusCode !== 200) throw await this.failure(res, what);
      pages.push(await res.body.bytes());
      path = this.nextPage(res, path, what);
    }
    return pages;
  }

  private async *pages(first: string, field: 'repositories' | 'tags', scopes: string[], what: string, signal?: AbortSignal): AsyncGenerator<string[]> {
    for (let path: string | undefined = first; path !== undefined;) {
      const res = await this.send({ method: 'GET', path, scopes, what, signal });
      if (res.statusCode === 404 && field === 'tags') return void (await res.body.dump());
      if (res.statusCode !== 200) throw await this.failure(res, what);
      const body = (await res.body.json()) as Record<string, unknown[] | null | undefined>;
      yield this.validNames(body[field] ?? [], field, what);
      path = this.nextPage(res, path, what);
    }
  }

  /**
   * Names a registry lists go into URLs and sync filters: one outside the distribution grammar (`a/../b`, an empty
   * segment) could make a rule read or delete in another repository, so the listing is refused.
   */
  private validNames(names: unknown[], field: 'repositories' | 'tags', what: string): string[] {
    const valid = field === 'tags' ? isTag : isRepositoryName;
    const bad = names.find((n) => typeof n !== 'string' || !valid(n));
    if (bad !== undefined) {
      throw new RegistryError('RegistryRejected', `${what} on ${this.name}: the registry listed ${JSON.stringify(bad)}, which is not a valid ${field === 'tags' ? 'tag' : 'repository name'}: refused`);
    }
    return names as string[];
  }

  /** The next page of a listing, which must be the same listing (a `Link` elsewhere would read something else). */
  private nextPage(res: Response, path: string, what: string): string | undefined {
    const next = nextPage(header(res, 'link'), this.baseUrl);
    if (next !== undefined && new URL(next, this.baseUrl).pathname !== new URL(path, this.baseUrl).pathname) {
      throw new RegistryError('RegistryRejected', `${what} on ${this.name}: the registry's next page ${next} is not the same listing: refused`);
    }
    return next;
  }

  async hasBlob(repository: string, digest: string, signal?: AbortSignal): Promise<boolean> {
    const what = `head blob ${repository}@${digest}`;
    const res = await this.send({ method: 'HEAD', path: `/v2/${repository}/blobs/${digest}`, scopes: [pull(repository)], what, signal });
    if (res.statusCode === 404) {
      await res.body.dump();
      return false;
    }
    await this.expect(res, [200], what);
    return true;
  }

  /**
   * Streams a blob, from `offset` on when given (an HTTP range). The caller must consume or destroy the stream.
   */
  async getBlob(repository: string, digest: string, signal?: AbortSignal, offset = 0): Promise<ChunkStream> {
    const what = `get blob ${repository}@${digest}`;
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const res = await this.send({ method: 'GET', path: `/v2/${repository}/blobs/${digest}`, headers, scopes: [pull(repository)], what, signal });
    if (res.statusCode !== 200 && !(res.statusCode === 206 && offset > 0)) throw await this.failure(res, what);
    if (res.statusCode === 200 && offset > 0) {
      await res.body.dump();
      throw new RegistryError('RegistryRejected', `${what} on ${this.name}: range requests are not supported`);
    }
    return this.limits.downloads ? throttled(res.body, this.limits.downloads, signal) : res.body;
  }

  /**
   * Cross-repository mount: the registry links a blob it already holds into another repository, copying nothing.
   * Returns false when the registry declines (it then answers with a fresh upload session, which we cancel).
   */
  async mountBlob(repository: string, digest: string, fromRepository: string, signal?: AbortSignal): Promise<boolean> {
    const what = `mount blob ${digest} from ${fromRepository} into ${repository}`;
    const query = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepository)}`;
    const res = await this.send({ method: 'POST', path: `/v2/${repository}/blobs/uploads/${query}`, scopes: [push(repository), pull(fromRepository)], what, signal });
    await this.expect(res, [201, 202], what);
    if (res.statusCode === 201) return true;
    await this.cancelUpload(repository, this.location(res), signal);
    return false;
  }

  /**
   * Uploads a blob: one PUT when it fits in a chunk, else PATCH chunks then a closing PUT with the digest. The
   * registry commits the blob only on that final PUT, so a stream that fails (for example because its content
   * does not match the digest) leaves nothing behind: the upload session is cancelled.
   *
   * Chunked uploads report a checkpoint after every chunk the registry accepted. Given one back (from a copy
   * that was interrupted), the upload asks the registry how much it holds and continues from there; `open` is
   * called with the offset to read the content from. If the session cannot be continued, it starts over.
   */
  async uploadBlob(
    repository: string,
    blob: BlobRef,
    open: (offset: number) => Promise<ChunkStream>,
    opts: { signal?: AbortSignal; resume?: UploadCheckpoint; onCheckpoint?: (checkpoint: UploadCheckpoint) => void } = {},
  ): Promise<void> {
    const resumed = opts.resume && (await this.uploadStatus(repository, opts.resume.location, opts.signal));
    if (resumed) {
      try {
        return await this.sendBlob(repository, blob, resumed, open, opts);
      } catch (err) {
        // A session the registry no longer accepts: start over now. Other transient faults go to the activity's
        // retry, which can still continue the session.
        const refused = err instanceof RegistryError && err.type !== 'RegistryAuthError' && (!err.retryable || isLostUpload(err.opts.status ?? 0, err.opts.code));
        if (!refused) throw err;
      }
    }
    const what = `upload blob ${repository}@${blob.digest}`;
    const started = await this.send({ method: 'POST', path: `/v2/${repository}/blobs/uploads/`, scopes: [push(repository)], what, signal: opts.signal });
    await this.expect(started, [202], what);
    return this.sendBlob(repository, blob, { location: this.location(started), offset: 0 }, open, opts);
  }

  private async sendBlob(
    repository: string,
    blob: BlobRef,
    from: UploadCheckpoint,
    open: (offset: number) => Promise<ChunkStream>,
    opts: { signal?: AbortSignal; onCheckpoint?: (checkpoint: UploadCheckpoint) => void },
  ): Promise<void> {
    const what = `upload blob ${repository}@${blob.digest}`;
    const { signal } = opts;
    let location = from.location;
    let content: ChunkStream | undefined;
    try {
      if (from.offset === blob.size) {
        // Every byte arrived before the interruption: only the commit is left.
        await this.commitUpload(repository, blob, location, signal);
        return;
      }
      content = await open(from.offset);
      if (from.offset === 0 && blob.size <= this.chunkSize) {
        const res = await this.send({
          method: 'PUT',
          url: withDigest(location, blob.digest),
          headers: { 'content-type': 'application/octet-stream' },
          body: { length: blob.size, chunks: content },
          scopes: [push(repository)],
          what,
          signal,
        });
        await this.expect(res, [201], what);
        return;
      }
      const reader = new ExactReader(content);
      for (let offset = from.offset; offset < blob.size;) {
        const length = Math.min(this.chunkSize, blob.size - offset);
        const res = await this.send({
          method: 'PATCH',
          url: location,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + length - 1}` },
          body: { length, chunks: reader.take(length) },
          scopes: [push(repository)],
          what,
          signal,
        });
        await this.expect(res, [202], what);
        location = this.location(res);
        offset += length;
        opts.onCheckpoint?.({ location, offset });
      }
      await reader.end(); // surfaces a digest or size mismatch before anything is committed
      await this.commitUpload(repository, blob, location, signal);
    } catch (err) {
      content?.destroy();
      // Cancelling a retryable failure would throw away chunks a retry can continue from.
      if (!(err instanceof RegistryError && err.retryable) && !signal?.aborted) await this.cancelUpload(repository, location).catch(() => undefined);
      throw err;
    }
  }

  private async commitUpload(repository: string, blob: BlobRef, location: string, signal?: AbortSignal): Promise<void> {
    const what = `commit blob ${repository}@${blob.digest}`;
    const res = await this.send({ method: 'PUT', url: withDigest(location, blob.digest), scopes: [push(repository)], what, signal });
    await this.expect(res, [201], what);
  }

  /** Where an upload session stands: its current location and how many bytes the registry holds, or null. */
  private async uploadStatus(repository: string, location: string, signal?: AbortSignal): Promise<UploadCheckpoint | null> {
    // distribution pins the offset in the location's `_state`: if a cut-off chunk left the session at another
    // offset, it refuses (and drops) the session, and the caller starts over.
    const res = await this.send({ method: 'GET', url: location, scopes: [push(repository)], what: 'upload status', signal });
    await res.body.dump();
    const range = /^0-(-?\d+)$/.exec(header(res, 'range') ?? '');
    if (res.statusCode !== 204 || !range) return null;
    return { location: this.location(res), offset: Number(range[1]) + 1 };
  }

  private async cancelUpload(repository: string, location: string, signal?: AbortSignal): Promise<void> {
    const res = await this.send({ method: 'DELETE', url: location, scopes: [push(repository)], what: 'cancel upload', signal });
    await res.body.dump();
  }

  private location(res: Response): string {
    const loc = header(res, 'location');
    if (!loc) throw new RegistryError('RegistryRejected', `${this.name} answered ${res.statusCode} without a Location header`);
    return new URL(loc, this.baseUrl).toString();
  }

  /**
   * Sends one request with the credentials the registry asks for. A 401 with a challenge is answered once (Basic,
   * or a Bearer token fetched from the realm for the scopes), then the request is sent again, so only requests
   * whose body can be replayed go first; streamed bodies follow a request that has already obtained the token.
   */
  private async send(req: { method: string; path?: string; url?: string; headers?: Record<string, string>; body?: Buffer | StreamedBody; scopes: string[]; what: string; signal?: AbortSignal }): Promise<Response> {
    const url = req.url ?? `${this.baseUrl}${req.path}`;
    // An upload Location may name another host: it gets neither the registry's credentials nor its tokens.
    const own = onRegistryHost(this.baseUrl, url);
    const replayable = req.body === undefined || Buffer.isBuffer(req.body);
    // A streamed body cannot be sent twice, so renew an expired token before sending it rather than after a 401.
    if (own && !replayable && this.scheme === 'bearer' && !this.authorization(req.scopes)) await this.fetchToken(req.scopes, undefined, req.signal);
    for (let attempt = 0; ; attempt++) {
      await this.limits.requests?.take(1, req.signal);
      const authorization = own ? this.authorization(req.scopes) : undefined;
      let res: Response;
      try {
        res = await this.http.request({
          method: req.method,
          url: new URL(url),
          headers: { 'user-agent': 'berth', ...req.headers, ...(authorization ? { authorization } : {}) },
          body: req.body,
          signal: req.signal,
        });
      } catch (err) {
        // Cancelled: let the activity's own cancellation surface, not a registry error.
        if (req.signal?.aborted) throw err;
        if (err instanceof HttpError && err.code === 'HTTP_BODY_LENGTH') throw new RegistryError('DigestMismatch', `${req.what} on ${this.name}: ${err.message}`, { cause: err });
        // A certificate the process does not trust stays untrusted however often it is tried.
        const code = (err as { code?: string }).code;
        if (code && untrustedCertificate.has(code)) {
          throw new RegistryError('RegistryRejected', `${req.what} on ${this.name}: ${code} ${(err as Error).message} (trust its CA with NODE_EXTRA_CA_CERTS)`, { cause: err });
        }
        throw asRegistryError(err, `${req.what} on ${this.name}`);
      }
      const challenge = header(res, 'www-authenticate');
      if (res.statusCode === 401 && own && !replayable && this.scheme === 'bearer') {
        // Our token was refused before its time (clock skew, revocation): forget it; a retry fetches a new one.
        await res.body.dump();
        this.tokens.delete(req.scopes.join(' '));
        throw new RegistryError('RegistryUnavailable', `${req.what} on ${this.name}: the registry refused a token mid-transfer`, { status: 401 });
      }
      if (res.statusCode !== 401 || !challenge || attempt > 0 || !replayable || !own) return res;
      await res.body.dump();
      await this.answerChallenge(challenge, req.scopes, req.signal);
    }
  }

  private authorization(scopes: string[]): string | undefined {
    if (this.scheme === 'basic' && this.credentials) return basicAuthorization(this.credentials);
    if (this.scheme !== 'bearer') return undefined;
    const cached = this.tokens.get(scopes.join(' '));
    return cached && cached.expiresAt > Date.now() ? `Bearer ${cached.token}` : undefined;
  }

  private async answerChallenge(headerValue: string, scopes: string[], signal?: AbortSignal): Promise<void> {
    const { scheme, params } = parseChallenge(headerValue);
    if (scheme === 'basic') {
      if (!this.credentials) throw new RegistryError('RegistryAuthError', `${this.name} requires credentials and none are configured for it`, { status: 401 });
      this.scheme = 'basic';
      return;
    }
    if (scheme !== 'bearer' || !params.realm) {
      throw new RegistryError('RegistryAuthError', `${this.name} asks for an unsupported authentication scheme: ${headerValue}`, { status: 401 });
    }
    const refusal = this.credentials && realmRefusal(this.baseUrl, params.realm, this.trustedTokenRealms);
    if (refusal) throw new RegistryError('RegistryAuthError', `${this.name} names ${refusal} (${params.realm}): berth does not send its credentials there`);
    this.tokenService = { realm: params.realm, service: params.service };
    await this.fetchToken(scopes, params.scope, signal);
  }

  private async fetchToken(scopes: string[], challengeScope: string | undefined, signal?: AbortSignal): Promise<void> {
    if (!this.tokenService) throw new RegistryError('RegistryAuthError', `${this.name}: no token service known`);
    const tokenUrl = new URL(this.tokenService.realm);
    if (this.tokenService.service) tokenUrl.searchParams.set('service', this.tokenService.service);
    // The challenge names the scope the registry wants; ask for ours too so the token covers the whole operation.
    for (const scope of new Set([...(challengeScope ? challengeScope.split(' ') : []), ...scopes])) tokenUrl.searchParams.append('scope', scope);
    let res: Response;
    try {
      res = await this.http.request({
        method: 'GET',
        url: tokenUrl,
        headers: { 'user-agent': 'berth', ...(this.credentials ? { authorization: basicAuthorization(this.credentials) } : {}) },
        signal,
      });
    } catch (err) {
      throw asRegistryError(err, `token request to ${tokenUrl.origin} for ${this.name}`);
    }
    if (res.statusCode === 401 || res.statusCode === 403) {
      await res.body.dump();
      const who = this.credentials ? `the credentials of user "${this.credentials.username}"` : 'anonymous access';
      throw new RegistryError('RegistryAuthError', `the token service of ${this.name} (${tokenUrl.origin}) rejected ${who} (HTTP ${res.statusCode})`, { status: res.statusCode });
    }
    if (res.statusCode !== 200) throw await this.failure(res, `token request for ${this.name}`);
    const body = (await res.body.json()) as { token?: string; access_token?: string; expires_in?: number };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError('RegistryAuthError', `the token service of ${this.name} answered without a token`);
    // Registries assume 60 s when expires_in is absent; renew a little early.
    const lifetime = (body.expires_in ?? 60) * 1000;
    this.tokens.set(scopes.join(' '), { token, expiresAt: Date.now() + lifetime - Math.min(10_000, lifetime / 4) });
    this.scheme = 'bearer';
  }

  /** Consumes the body of an expected response; turns any other into a classified error. */
  private async expect(res: Response, ok: number[], what: string): Promise<void> {
    if (!ok.includes(res.statusCode)) throw await this.failure(res, what);
    await res.body.dump();
  }

  /** Turns an unexpected response into a classified error with the registry's own error code and message. */
  private failure(res: Response, what: string): Promise<RegistryError> {
    return responseFailure(res, what, this.name, this.credentials);
  }
}

function pull(repository: string): string {
  return `repository:${repository}:pull`;
}

/** Node's TLS verification failures: permanent until the process trusts the certificate's CA. */
const untrustedCertificate = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function push(repository: string): string {
  return `repository:${repository}:pull,push`;
}

function header(res: Response, name: string): string | undefined {
  return headerOf(res.headers, name);
}

/** The path of the next page from an RFC 5988 `Link: </v2/...?last=x&n=y>; rel="next"` header, if any. */
function nextPage(link: string | undefined, baseUrl: string): string | undefined {
  const match = link?.match(/<([^>]+)>\s*;\s*rel="?next"?/);
  if (!match) return undefined;
  const url = new URL(match[1], baseUrl);
  return `${url.pathname}${url.search}`;
}

function withDigest(location: string, digest: string): string {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  return url.toString();
}

/**
 * Reads a stream in exact-length slices, one per PATCH chunk, without buffering a whole chunk. A chunk cut at a
 * slice's end stays lent: the stream is not read on until its rest has gone out with the next slice.
 */
class ExactReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private pending: Uint8Array | undefined;

  constructor(stream: ChunkStream) {
    this.it = stream[Symbol.asyncIterator]();
  }

  async *take(length: number): AsyncGenerator<Uint8Array> {
    let left = length;
    while (left > 0) {
      let buf = this.pending;
      this.pending = undefined;
      if (!buf) {
        const next = await this.it.next();
        if (next.done) throw new RegistryError('DigestMismatch', `blob stream ended ${left} bytes early`);
        buf = next.value;
      }
      if (buf.length > left) {
        this.pending = buf.subarray(left);
        buf = buf.subarray(0, left);
      }
      left -= buf.length;
      yield buf;
    }
  }

  async end(): Promise<void> {
    const next = this.pending ? { done: false } : await this.it.next();
    if (!next.done) throw new RegistryError('DigestMismatch', 'blob stream is longer than its descriptor says');
  }
}

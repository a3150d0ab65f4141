import { setTimeout as sleep } from 'node:timers/promises';
import type { CopyCounts } from '../../contracts/replication.ts';
import type { RegistryClient, Manifest, UploadCheckpoint } from './client.ts';
import { DigestVerifier } from './digest-verifier.ts';
import { formatImage, RegistryError } from './errors.ts';
import { isDistributable, isIndex, type Descriptor, type ManifestDocument } from './media-types.ts';
import { mergeReferrersTags, referrerFinder } from './referrers.ts';

export interface CopyProgress extends CopyCounts {
  /** Blobs this copy has finished uploading: kept across retries so a resumed copy does not count them again. */
  copiedDigests: string[];
  /**
   * Blobs the target lacked when this copy looked, before it uploaded anything, and not uploaded yet. A retry that
   * finds one of them on the target counts it as copied: an attempt whose later heartbeats were lost put it there.
   */
  missingDigests: string[];
  /** Chunked uploads under way, by digest: a retry continues them instead of sending their bytes again. */
  uploads: Record<string, UploadCheckpoint>;
}

/** What a copy reports to the workflow: its counts, without what only a retry needs. */
export function copyCounts({ copiedDigests: _, missingDigests: __, uploads: ___, ...counts }: CopyProgress): CopyCounts {
  return counts;
}

export interface CopyImageRequest {
  source: RegistryClient;
  sourceRepository: string;
  target: RegistryClient;
  targetRepository: string;
  /** Tag or digest to copy from the source. */
  reference: string;
  /** Tag or digest to store it under on the target; `reference` when not given. */
  targetReference?: string;
  /** Blobs uploaded at once. */
  concurrency: number;
  /** Where manifests and referrers are read when `source` may not hold them yet: a distribution's source. */
  manifestSource?: RegistryClient;
  /**
   * `source` is itself still receiving the image (an IDC upstream in a distribution): a blob it lacks is waited for,
   * as long as blobs keep arriving there, and pulled as soon as it lands.
   */
  waitForSource?: boolean;
  /**
   * Blobs of 1 MiB and more go in manifest order, each starting when the one before it is 3/4 through, so that they
   * land one after another, each as early as it can, for the copies that wait on this target (an IDC with IDCs
   * below it). Concurrent copies over one link all finish together, late; one at a time leaves a link idle between
   * blobs and, on a busy machine, a single stream short of the link.
   */
  inOrder?: boolean;
  /** Progress of an earlier attempt of the same copy (from heartbeat details; missingDigests is new in 0.2). */
  resumeFrom?: Pick<CopyProgress, 'copiedDigests' | 'uploads'> & Partial<Pick<CopyProgress, 'missingDigests'>>;
  onProgress?: (progress: CopyProgress) => void;
  signal?: AbortSignal;
}

/** How often a copy reports progress while bytes flow. */
const progressIntervalMs = 1000;

/** A copy waiting on a source that is itself receiving gives up when no blob arrived there for this long. */
const sourceStallMs = 10 * 60_000;

/** Blobs below this size are copied concurrently even in order: a config or a small layer holds nothing up. */
const inOrderFrom = 1 << 20;

/** In order, the next large blob starts when this share of the one before it is through. */
const staggerAt = 0.75;

/**
 * How many levels of referrers are followed: a signature of an SBOM of the image is two. It bounds the requests a
 * registry full of artifacts can make a copy send; nothing in real use nests deeper.
 */
const referrerDepth = 4;

export interface CopyImageResult {
  digest: string;
  mediaType: string;
  manifests: number;
  /** Referrer manifests (signatures, SBOMs, attestations, and theirs in turn) now on the target, copied or found. */
  referrers: number;
  bytesCopied: number;
  blobsCopied: number;
  blobsSkipped: number;
  blobsMounted: number;
}

/** A manifest to store on the target under `reference`, with the manifests under it (children first) and its blobs. */
interface Unit {
  top: Manifest;
  reference: string;
  children: Manifest[];
  blobs: Map<string, Descriptor>;
}

/**
 * Copies one image, every platform of an index included, with its referrers, and checks at the end that the
 * target resolves the reference to the source's digest. Blobs the target already has are skipped, as is all of a
 * manifest the target already holds; blobs go first, then the referrers, then the image's per-platform manifests
 * and its top manifest, so the tag appears only once everything under it, signatures included, is there.
 */
export async function copyImage(req: CopyImageRequest): Promise<CopyImageResult> {
  const { source, target, sourceRepository, targetRepository, reference, signal } = req;
  const targetReference = req.targetReference ?? reference;
  const manifests = req.manifestSource ?? source;
  const top = await manifests.getManifest(sourceRepository, reference, signal);
  const image = await collect(manifests, sourceRepository, top, targetReference, signal);
  const ofImage = `the referrers of ${sourceRepository}@${top.digest}`;
  const referrers = await inContext(`finding ${ofImage} on ${manifests.name}`, () => collectReferrers(manifests, sourceRepository, image, signal));

  const units = [...referrers.units, image];
  const stored = new Set<Unit>();
  await forEachLimit(units, req.concurrency, async (u) => {
    if ((await target.headManifest(targetRepository, u.reference, signal)) === u.top.digest) stored.add(u);
  });
  const missing = units.filter((u) => !stored.has(u));
  const blobs = new Map(units.flatMap((u) => [...u.blobs]));
  // Blobs of manifests the target holds are there (a registry refuses a manifest whose blobs it lacks).
  const toCopy = new Map(missing.flatMap((u) => [...u.blobs]));

  // What the target lacks, all of it before the first upload, and reported at once: whatever happens to this
  // attempt's later reports (a dead worker, Temporal out of reach), a retry knows which blobs it finds there
  // this replication put there.
  const present = new Set<string>();
  await forEachLimit([...toCopy.keys()], req.concurrency, async (digest) => {
    if (await target.hasBlob(targetRepository, digest, signal)) present.add(digest);
  });
  const ours = new Set([...(req.resumeFrom?.copiedDigests ?? []), ...(req.resumeFrom?.missingDigests ?? [])]);
  const sizeOf = (digests: Iterable<string>) => [...digests].reduce((n, d) => n + (blobs.get(d)?.size ?? 0), 0);
  const copied: string[] = [];
  const lacking = new Set<string>();
  let [blobsSkipped, blobsMounted] = [0, 0];
  for (const digest of blobs.keys()) {
    if (toCopy.has(digest) && !present.has(digest)) lacking.add(digest);
    else if (ours.has(digest))
      copied.push(digest); // an earlier attempt uploaded it
    else blobsSkipped++;
  }
  // Bytes of blob content put on the target, each blob counted once however many attempts it took.
  let bytesCopied = sizeOf(copied);
  const uploads = { ...req.resumeFrom?.uploads };
  let lastReport = 0;
  const report = () => {
    lastReport = Date.now();
    req.onProgress?.({
      bytesTotal: sizeOf(blobs.keys()),
      bytesCopied,
      blobsTotal: blobs.size,
      blobsCopied: copied.length,
      blobsSkipped,
      blobsMounted,
      copiedDigests: [...copied],
      missingDigests: [...lacking],
      uploads: { ...uploads },
    });
  };
  report();

  const sameRegistry = source.baseUrl === target.baseUrl;
  const lastArrival = { at: Date.now() };
  const copyBlob = async (blob: Descriptor, halfway?: () => void) => {
    if (sameRegistry && (await target.mountBlob(targetRepository, blob.digest, sourceRepository, signal))) {
      blobsMounted++;
    } else {
      let counted = 0; // this blob's share of bytesCopied, taken back if its upload starts over
      const open = async (offset: number) => {
        // The upload session is open already: the bytes flow two round trips after the blob lands.
        if (req.waitForSource) await arrival(source, sourceRepository, blob.digest, lastArrival, signal);
        const content = await source.getBlob(sourceRepository, blob.digest, signal, offset);
        bytesCopied += offset - counted; // up to offset: sent by an earlier attempt, continued now
        counted = offset;
        // A verifier error fails the upload it feeds before the registry commits anything.
        return new DigestVerifier(content, blob, offset, (n) => {
          counted += n;
          bytesCopied += n;
          if (counted >= blob.size * staggerAt) halfway?.();
          // Report while bytes flow, not only per blob: a large blob on a slow link must keep heartbeating.
          if (Date.now() - lastReport >= progressIntervalMs) report();
        });
      };
      await target.uploadBlob(targetRepository, blob, open, {
        signal,
        resume: uploads[blob.digest],
        onCheckpoint: (checkpoint) => {
          uploads[blob.digest] = checkpoint;
          report();
        },
      });
      delete uploads[blob.digest];
      copied.push(blob.digest);
    }
    lacking.delete(blob.digest);
    report();
  };

  const imageBlobs = stored.has(image) ? new Map<string, Descriptor>() : image.blobs;
  const upload = async (descriptors: Iterable<Descriptor>) => {
    const lacked = [...descriptors].filter((b) => lacking.has(b.digest));
    if (!req.inOrder) return forEachLimit(lacked, req.concurrency, (b) => copyBlob(b));
    await forEachLimit(
      lacked.filter((b) => b.size < inOrderFrom),
      req.concurrency,
      (b) => copyBlob(b),
    );
    await staggered(
      lacked.filter((b) => b.size >= inOrderFrom),
      copyBlob,
    );
  };
  await upload(imageBlobs.values());
  // A signed image without its signature is not a good copy: a referrer that fails fails the copy, before the tag.
  await inContext(`copying ${ofImage} to ${target.name}`, async () => {
    await upload(toCopy.values());
    for (const u of missing) if (u !== image) await store(target, targetRepository, u, signal);
    await mergeReferrersTags(target, targetRepository, referrers.indexes, referrers.listed, signal);
  });
  if (!stored.has(image)) await store(target, targetRepository, image, signal);
  report();
  return {
    digest: top.digest,
    mediaType: top.mediaType,
    manifests: image.children.length + 1,
    referrers: referrers.count,
    // Blobs this copy put on the target, each counted once across attempts, provided this copy's first report
    // (the blobs the target lacked) reached Temporal before an attempt was lost.
    bytesCopied: sizeOf(copied),
    blobsCopied: copied.length,
    blobsSkipped,
    blobsMounted,
  };
}

/**
 * Waits until a source that is itself receiving the image holds a blob (HEAD: asking costs the link no body).
 * Unreachable counts as not there yet: the source may be restarting, and if its own copy fails for good, the
 * distribution cancels this one.
 */
async function arrival(source: RegistryClient, repository: string, digest: string, last: { at: number }, signal?: AbortSignal): Promise<void> {
  for (let delayMs = 50; ; delayMs = Math.min(250, delayMs * 1.5)) {
    const there = await source.hasBlob(repository, digest, signal).catch((err) => {
      if (err instanceof RegistryError && err.retryable) return false;
      throw err;
    });
    if (there) return void (last.at = Date.now());
    if (Date.now() - last.at > sourceStallMs) {
      throw new RegistryError('RegistryUnavailable', `${source.name} has received no blob of the image for ${sourceStallMs / 60_000} minutes; ${digest} is still missing there`);
    }
    await sleep(delayMs, undefined, { signal });
  }
}

/** Writes a unit children first, then reads its reference back: only the target's own answer counts. */
async function store(target: RegistryClient, repository: string, u: Unit, signal?: AbortSignal): Promise<void> {
  for (const m of u.children) await target.putManifest(repository, m.digest, m, signal);
  await target.putManifest(repository, u.reference, u.top, signal);
  const landed = await target.headManifest(repository, u.reference, signal);
  if (landed !== u.top.digest) {
    throw new RegistryError('DigestMismatch', `${formatImage(repository, u.reference)} on ${target.name} resolves to ${landed ?? 'nothing'}, the source has ${u.top.digest}`);
  }
}

/** Walks a manifest (an index down to its image manifests) into a unit: its child manifests and unique blobs. */
async function collect(source: RegistryClient, repository: string, top: Manifest, reference: string, signal?: AbortSignal): Promise<Unit> {
  const unit: Unit = { top, reference, children: [], blobs: new Map() };
  const visit = async (m: Manifest): Promise<void> => {
    const doc = JSON.parse(m.bytes.toString('utf8')) as ManifestDocument;
    if (isIndex(m.mediaType) || doc.manifests) {
      for (const child of doc.manifests ?? []) await visit(await source.getManifest(repository, child.digest, signal));
    } else {
      for (const d of [doc.config, ...(doc.layers ?? []), ...(doc.blobs ?? [])]) {
        if (d && (await travels(source, repository, d, signal))) unit.blobs.set(d.digest, d);
      }
    }
    if (m !== top) unit.children.push(m);
  };
  await visit(top);
  return unit;
}

/**
 * Whether a blob travels with its manifest. Non-distributable (foreign) layers stay at their `urls`; any other blob
 * is copied, also one that names `urls` when the source has it (crane decides by media type too). Only such a blob
 * that the source lacks is left to its URLs, as the image says.
 */
async function travels(source: RegistryClient, repository: string, blob: Descriptor, signal?: AbortSignal): Promise<boolean> {
  if (!isDistributable(blob)) return false;
  return !blob.urls?.length || (await source.hasBlob(repository, blob.digest, signal));
}

/**
 * The referrers of every manifest of the image (on its index and on each platform), and theirs in turn, as units
 * to store by digest or under their source tag. `indexes` are the source's tag schema indexes by subject, `listed`
 * what the Referrers API listed; `count` is how many referrer manifests there are.
 */
async function collectReferrers(source: RegistryClient, repository: string, image: Unit, signal?: AbortSignal): Promise<{ units: Unit[]; count: number; indexes: Map<string, Manifest>; listed: Map<string, Descriptor[]> }> {
  const find = referrerFinder(source, repository, signal);
  const units = new Map<string, Unit>();
  const indexes = new Map<string, Manifest>();
  const listed = new Map<string, Descriptor[]>();
  const digestsOf = (u: Unit) => [u.top.digest, ...u.children.map((m) => m.digest)];
  const seen = new Set(digestsOf(image));
  let count = 0;
  for (let depth = 0, subjects = [...seen]; depth < referrerDepth && subjects.length; depth++) {
    const next: string[] = [];
    // One subject at a time: the first answer tells whether the source has the Referrers API at all.
    for (const subject of subjects) {
      const { found, index, listed: viaApi } = await find(subject);
      if (viaApi.length) listed.set(subject, viaApi);
      if (index) indexes.set(subject, index);
      for (const { manifest, tag } of found) {
        const reference = tag ?? manifest.digest;
        if (units.has(reference)) continue;
        const unit = await collect(source, repository, manifest, reference, signal);
        units.set(reference, unit);
        if (seen.has(manifest.digest)) continue;
        count++;
        const fresh = digestsOf(unit).filter((d) => !seen.has(d));
        for (const d of fresh) seen.add(d);
        next.push(...fresh);
      }
    }
    subjects = next;
  }
  return { units: [...units.values()], count, indexes, listed };
}

/** Runs `fn`, saying in a registry error's message what it was doing; the error keeps its type, so its retries. */
async function inContext<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RegistryError) throw new RegistryError(err.type, `${what}: ${err.message}`, { ...err.opts, cause: err });
    throw err;
  }
}

/**
 * Runs `fn` on each item in order, each starting once the one before it called `halfway` (or ended), two at most
 * at a time. A failure stops the starting of new ones; the other one running finishes before the failure surfaces.
 */
async function staggered<T>(items: T[], fn: (item: T, halfway: () => void) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  for (const item of items) {
    if (failure) break;
    let halfway!: () => void;
    const half = new Promise<void>((resolve) => (halfway = resolve));
    const run: Promise<void> = fn(item, halfway)
      .catch((err) => void (failure ??= { err }))
      .finally(() => running.delete(run));
    running.add(run);
    await Promise.race([half, run]);
    while (running.size > 1 && !failure) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure) throw failure.err;
}

async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (!failed && next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        failed = true; // stop starting new work; in-flight lanes finish their current item
        throw err;
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, lane));
  const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (rejected) throw rejected.reason;
}

import { createHash } from 'node:crypto';
import type { Manifest, RegistryClient } from './client.ts';
import { RegistryError } from './errors.ts';
import { isIndex, MediaType, type Descriptor } from './media-types.ts';

// The referrers of a manifest are the artifacts that point at it: signatures, SBOMs, attestations. A registry with
// the Referrers API (OCI distribution 1.1) lists them at /v2/<repo>/referrers/<digest>. Without it (docker-registry
// 2.8 answers 404), clients tag them after the digest they refer to, in the same repository: the OCI 1.1 referrers
// tag schema (`sha256-<hex>`, an index listing the referrers) and cosign's (`sha256-<hex>.sig`, `.att`, `.sbom`,
// the referrer itself).

const referrerTagPattern = /^sha256-([a-f0-9]{64})(?:\.[A-Za-z0-9_.-]+)?$/;
// The OCI digest grammar: listed digests go into URL paths.
const digestPattern = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

/** The tag schema's tag for a digest: where a registry without the Referrers API keeps the index of its referrers. */
export function referrersTag(digest: string): string {
  return digest.replace(':', '-');
}

/** The digest a tag names under the tag schema (`sha256-<hex>` or `sha256-<hex>.<suffix>`), if it is such a tag. */
export function referredDigest(tag: string): string | undefined {
  const match = referrerTagPattern.exec(tag);
  return match ? `sha256:${match[1]}` : undefined;
}

/** The descriptors of a referrers index: what the Referrers API answers, and what a tag schema index holds. */
export function parseReferrersIndex(bytes: Buffer, what: string): Descriptor[] {
  let manifests: unknown;
  try {
    manifests = (JSON.parse(bytes.toString('utf8')) as { manifests?: unknown }).manifests;
  } catch {
    // Not JSON: reported below like any other document that is not an index.
  }
  if (!Array.isArray(manifests) || !manifests.every(isDescriptor)) throw new RegistryError('RegistryRejected', `${what}: not an image index of descriptors`);
  return manifests;
}

function isDescriptor(value: unknown): value is Descriptor {
  const d = value as Partial<Descriptor> | null;
  return typeof d?.mediaType === 'string' && typeof d.digest === 'string' && digestPattern.test(d.digest) && Number.isSafeInteger(d.size);
}

/** Registries that answered 404 to the Referrers API: asked once, not once per digest. */
const withoutReferrersApi = new WeakSet<RegistryClient>();

/** What the Referrers API lists for a digest, or null where the registry has no such API (remembered per client). */
async function listReferrers(client: RegistryClient, repository: string, digest: string, signal?: AbortSignal): Promise<Descriptor[] | null> {
  if (withoutReferrersApi.has(client)) return null;
  const pages = await client.getReferrers(repository, digest, signal);
  if (!pages) {
    withoutReferrersApi.add(client);
    return null;
  }
  return pages.flatMap((page) => parseReferrersIndex(page, `list referrers of ${repository}@${digest} on ${client.name}`));
}

export interface Referrers {
  /** The referrer manifests, each with its tag on the source when it has one (cosign's `.sig`, `.att`, `.sbom`). */
  found: { manifest: Manifest; tag?: string }[];
  /** The subject's tag schema index on the source (`sha256-<hex>`): copied after the referrers it lists. */
  index?: Manifest;
  /** What the Referrers API listed: a target without the API needs these in its own `sha256-<hex>` index. */
  listed: Descriptor[];
}

/**
 * Finds the referrers of manifests in one source repository, through the Referrers API where the source has it
 * and through the tag schema always (cosign keeps its tags on registries with the API too). The repository's tags
 * are listed once, on the first call, however many digests are asked about.
 */
export function referrerFinder(source: RegistryClient, repository: string, signal?: AbortSignal): (subject: string) => Promise<Referrers> {
  let tags: Promise<Map<string, string[]>> | undefined;
  const fetch = (reference: string) => source.getManifest(repository, reference, signal);
  return async (subject) => {
    tags ??= tagsByReferredDigest(source, repository, signal);
    const [listed, tagged] = await Promise.all([listReferrers(source, repository, subject, signal), tags.then((t) => t.get(subject) ?? [])]);
    // By digest; a referrer found under its own tag keeps the tag, however else it was found.
    const found = new Map<string, { manifest: Manifest; tag?: string }>();
    const addListed = async (descriptors: Descriptor[]) => {
      for (const d of descriptors) if (!found.has(d.digest)) found.set(d.digest, { manifest: await fetch(d.digest) });
    };
    let index: Manifest | undefined;
    for (const tag of tagged) {
      const manifest = await fetch(tag);
      if (tag === referrersTag(subject) && isIndex(manifest.mediaType)) {
        index = manifest;
        await addListed(parseReferrersIndex(manifest.bytes, `${repository}:${tag} on ${source.name}`));
      } else {
        found.set(manifest.digest, { manifest, tag });
      }
    }
    await addListed(listed ?? []);
    return { found: [...found.values()], index, listed: listed ?? [] };
  };
}

/** The repository's tag schema tags by the digest they name. */
async function tagsByReferredDigest(client: RegistryClient, repository: string, signal?: AbortSignal): Promise<Map<string, string[]>> {
  const byDigest = new Map<string, string[]>();
  for await (const page of client.listTags(repository, undefined, signal)) {
    for (const tag of page) {
      const digest = referredDigest(tag);
      if (digest) byDigest.set(digest, [...(byDigest.get(digest) ?? []), tag]);
    }
  }
  return byDigest;
}

/**
 * Brings each subject's `sha256-<hex>` index (the OCI 1.1 referrers tag schema) to the target without losing what
 * the target lists already: a scan report attached at the target stays listed after a re-copy. The target's index
 * lists what the source's index lists and, on a target without the Referrers API, what the source's API listed (a
 * target with the API indexes referrers by their `subject` on its own). A target without an index gets the
 * source's byte for byte.
 */
export async function mergeReferrersTags(target: RegistryClient, repository: string, sourceIndexes: Map<string, Manifest>, listed: Map<string, Descriptor[]>, signal?: AbortSignal): Promise<void> {
  const [first] = listed.keys();
  const targetLacksApi = first !== undefined && (await listReferrers(target, repository, first, signal)) === null;
  const subjects = new Set([...sourceIndexes.keys(), ...(targetLacksApi ? listed.keys() : [])]);
  for (const subject of subjects) {
    const index = sourceIndexes.get(subject);
    const fromIndex = index ? parseReferrersIndex(index.bytes, `${repository}:${referrersTag(subject)}`) : [];
    await addToReferrersTag(target, repository, subject, [...fromIndex, ...(targetLacksApi ? (listed.get(subject) ?? []) : [])], index, signal);
  }
}

/**
 * Adds descriptors to a subject's `sha256-<hex>` index on a registry, keeping the index and what it lists; where
 * there is none yet, starts from `initial` (the source's index), else from an empty one.
 */
async function addToReferrersTag(client: RegistryClient, repository: string, subject: string, descriptors: Descriptor[], initial: Manifest | undefined, signal?: AbortSignal): Promise<void> {
  const tag = referrersTag(subject);
  const current = await client.getManifest(repository, tag, signal).catch((err) => {
    if (err instanceof RegistryError && err.type === 'ImageNotFound') return undefined;
    throw err;
  });
  const base = current ?? initial;
  const listedAlready = base ? parseReferrersIndex(base.bytes, `${repository}:${tag} on ${client.name}`) : [];
  const known = new Set(listedAlready.map((d) => d.digest));
  const added = descriptors.filter((d) => !known.has(d.digest) && known.add(d.digest));
  if (!added.length && base === current) return;
  if (!added.length && base) return void (await client.putManifest(repository, tag, base, signal));
  const document = base ? JSON.parse(base.bytes.toString('utf8')) : { schemaVersion: 2, mediaType: MediaType.ociIndex };
  const bytes = Buffer.from(JSON.stringify({ ...document, manifests: [...listedAlready, ...added] }));
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  await client.putManifest(repository, tag, { mediaType: MediaType.ociIndex, digest, bytes }, signal);
}

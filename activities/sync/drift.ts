import type { RegistryClient } from '../registry/client.ts';
import { RegistryError } from '../registry/errors.ts';
import { referredDigest } from '../registry/referrers.ts';
import { lanes } from './lanes.ts';

export interface TagDigest {
  tag: string;
  digest: string;
}

/** How a target's repository differs from the source's, over the tags the rule covers (of one page of them). */
export interface RepositoryDrift {
  repository: string;
  inSync: number;
  /** On the source, not on the target. */
  missing: TagDigest[];
  /** On both, at different digests: `digest` is the source's. */
  different: (TagDigest & { targetDigest: string })[];
  /** On the target only; `sharedWith` names a kept tag at the same digest (deleting it would delete that too). */
  extra: (TagDigest & { sharedWith?: string })[];
}

/**
 * Compares a repository's tags over the ones a rule covers, for the tags of one page (every tag by default).
 * `source` holds the source's digests of the page's tags; `target` the target's, of the page's tags and, where the
 * page has extra tags, of every other tag too. `target` may hold tags the rule does not cover: they are never
 * reported, but they protect their digests from deletion. So does a tag of another page that the source has
 * (`sourceTags`): it is fixed on its own page, and holds its digest until then.
 */
export function compareTags(
  repository: string,
  source: Map<string, string>,
  target: Map<string, string>,
  covered: (tag: string) => boolean,
  inPage: (tag: string) => boolean = () => true,
  sourceTags: ReadonlySet<string> = new Set(source.keys()),
): RepositoryDrift {
  const drift: RepositoryDrift = { repository, inSync: 0, missing: [], different: [], extra: [] };
  for (const [tag, digest] of source) {
    // Referrer tags (`sha256-<hex>[.sig]`) travel with their subject's copy, not as images of their own.
    if (!inPage(tag) || referredDigest(tag) !== undefined) continue;
    const targetDigest = target.get(tag);
    if (targetDigest === undefined) drift.missing.push({ tag, digest });
    else if (targetDigest !== digest) drift.different.push({ tag, digest, targetDigest });
    else drift.inSync++;
  }
  // Registries delete manifests, not tags: a digest that a tag staying after the sync points to must stay.
  const stays = (tag: string, digest: string) => !covered(tag) || (inPage(tag) ? source.get(tag) === digest : sourceTags.has(tag));
  const tagsOf = new Map<string, string[]>();
  for (const [tag, digest] of target) tagsOf.set(digest, [...(tagsOf.get(digest) ?? []), tag]);
  for (const [tag, digest] of target) {
    // A target without the Referrers API holds berth-written referrer tags the source never had.
    if (!inPage(tag) || !covered(tag) || source.has(tag) || referredDigest(tag) !== undefined) continue;
    const sharedWith = tagsOf.get(digest)!.find((t) => t !== tag && stays(t, digest));
    drift.extra.push({ tag, digest, ...(sharedWith ? { sharedWith } : {}) });
  }
  return drift;
}

export interface DriftPageRequest {
  source: RegistryClient;
  target: RegistryClient;
  repository: string;
  /** Both sides' tags, as `tagLists` reads them. */
  lists: TagLists;
  covered: (tag: string) => boolean;
  /** Deletion sync: which extra tags may go depends on every tag at their digests. */
  deleteExtra: boolean;
  /** The page starts after this tag. */
  after?: string;
  /** The page ends once this many of its tags need a fix (it may hold a few more, being read `lanes` at a time)... */
  limit: number;
  /** ... or once it has read this many tags, so that a page of tags in step takes bounded time too. */
  readLimit: number;
  /** Tags read at once (a manifest read on each side). */
  lanes: number;
  signal?: AbortSignal;
  onTag?: () => void;
}

/**
 * One page of a repository's drift: its tags after `after`, in order, until `limit` of them need a fix or
 * `readLimit` have been read; `next` is the page's last tag when more follow. Digests are read only for the page's
 * tags, and only where they can differ: a tag the target's list lacks is missing without reading its manifest there.
 */
export async function driftPage(req: DriftPageRequest): Promise<{ drift: RepositoryDrift; next?: string; read: number }> {
  const { source, target, repository, covered, signal } = req;
  const { candidates, onSource, onTarget } = driftCandidates(req.lists, covered, req.after);
  const sourceDigests = new Map<string, string>();
  const targetDigests = new Map<string, string>();
  const read = async (client: RegistryClient, tag: string, into: Map<string, string>) => {
    const digest = await digestOf(client, repository, tag, signal);
    if (digest) into.set(tag, digest);
    req.onTag?.();
  };
  let walked = 0;
  let toFix = 0;
  await lanes(
    req.lanes,
    () => walked < candidates.length && toFix < req.limit && walked < req.readLimit,
    async () => {
      const tag = candidates[walked++];
      await Promise.all([onSource.has(tag) && read(source, tag, sourceDigests), onTarget.has(tag) && read(target, tag, targetDigests)]);
      if (sourceDigests.get(tag) !== targetDigests.get(tag)) toFix++;
    },
  );
  const { inPage, next } = pageExtent(candidates, walked, req.after);
  let drift = compareTags(repository, sourceDigests, targetDigests, covered, inPage, onSource);
  if (req.deleteExtra && drift.extra.length > 0) {
    // Which extra tags may go depends on every tag at their digests: the target's other tags are read too.
    const unread = req.lists.target.filter((t) => !targetDigests.has(t));
    let i = 0;
    await lanes(
      req.lanes,
      () => i < unread.length,
      () => read(target, unread[i++], targetDigests),
    );
    drift = compareTags(repository, sourceDigests, targetDigests, covered, inPage, onSource);
  }
  return { drift, read: walked, ...(next !== undefined ? { next } : {}) };
}

/**
 * The tags of a repository that can drift after `after`, in order: the source's covered ones, and covered ones
 * only the target lists (extra). Referrer tags travel with their subject's copy. A tag is read only on the sides
 * that list it (`onSource`, `onTarget`): one the target's list lacks is missing without reading its manifest there.
 */
export function driftCandidates(lists: TagLists, covered: (tag: string) => boolean, after?: string): { candidates: string[]; onSource: Set<string>; onTarget: Set<string> } {
  const onSource = new Set(lists.source.filter(covered));
  const onTarget = new Set(lists.target);
  const candidates = [...new Set([...onSource, ...lists.target.filter((t) => covered(t) && !onSource.has(t))])].filter((t) => (after === undefined || t > after) && referredDigest(t) === undefined).sort();
  return { candidates, onSource, onTarget };
}

/**
 * What a page covers once `walked` of its candidates were read: the tags after `after` up to the last one read;
 * `next` (that last tag) when candidates are left for the next page.
 */
export function pageExtent(candidates: string[], walked: number, after?: string): { inPage: (tag: string) => boolean; next?: string } {
  const last = candidates[walked - 1];
  const inPage = (tag: string) => (after === undefined || tag > after) && last !== undefined && tag <= last;
  return walked < candidates.length ? { inPage, next: last } : { inPage };
}

/**
 * The digest a tag points to, from a GET of its manifest (a few hundred bytes to a few KB, the digest checked);
 * undefined when the tag is gone (listed a moment ago, it may be). A GET because undici closed the connection after
 * every HEAD; berth's own transport keeps it, so a HEAD is worth measuring against it (README, Benchmark).
 */
async function digestOf(client: RegistryClient, repository: string, tag: string, signal?: AbortSignal): Promise<string | undefined> {
  try {
    return (await client.getManifest(repository, tag, signal)).digest;
  } catch (err) {
    if (err instanceof RegistryError && err.type === 'ImageNotFound') return undefined;
    throw err;
  }
}

export interface TagLists {
  source: string[];
  target: string[];
}

/** Every tag of a repository on both sides, read whole (a request per `pageSize` tags). */
export async function tagLists(source: RegistryClient, target: RegistryClient, repository: string, pageSize: number, signal?: AbortSignal): Promise<TagLists> {
  const all = async (client: RegistryClient) => {
    const tags: string[] = [];
    for await (const page of client.listTags(repository, pageSize, signal)) tags.push(...page);
    return tags;
  };
  const [sourceTags, targetTags] = await Promise.all([all(source), all(target)]);
  return { source: sourceTags, target: targetTags };
}

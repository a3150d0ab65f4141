import type { RegistryClient } from '../registry/client.ts';
import { referredDigest } from '../registry/referrers.ts';

export interface TagDigest {
  tag: string;
  digest: string;
}

/** How a target's repository differs from the source's, over the tags the rule covers. */
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

/** Every tag of a repository that passes the filter, with its digest (a HEAD per tag, each followed by `onTag`). */
export async function taggedDigests(client: RegistryClient, repository: string, pageSize: number, keep: (tag: string) => boolean, signal?: AbortSignal, onTag?: () => void): Promise<Map<string, string>> {
  const digests = new Map<string, string>();
  for await (const page of client.listTags(repository, pageSize, signal)) {
    for (const tag of page.filter(keep)) {
      // A tag listed a moment ago may be gone now: nothing to compare then.
      const digest = await client.headManifest(repository, tag, signal);
      if (digest) digests.set(tag, digest);
      onTag?.();
    }
  }
  return digests;
}

/**
 * Compares a repository's tags over the ones a rule covers. `target` may hold tags the rule does not cover: they
 * are never reported, but they protect their digests from deletion.
 */
export function compareTags(repository: string, source: Map<string, string>, target: Map<string, string>, covered: (tag: string) => boolean): RepositoryDrift {
  const drift: RepositoryDrift = { repository, inSync: 0, missing: [], different: [], extra: [] };
  for (const [tag, digest] of source) {
    // Referrer tags (`sha256-<hex>[.sig]`) travel with their subject's copy, not as images of their own.
    if (referredDigest(tag) !== undefined) continue;
    const targetDigest = target.get(tag);
    if (targetDigest === undefined) drift.missing.push({ tag, digest });
    else if (targetDigest !== digest) drift.different.push({ tag, digest, targetDigest });
    else drift.inSync++;
  }
  // Registries delete manifests, not tags: a digest that a tag staying after the sync points to must stay.
  const stays = (tag: string, digest: string) => !covered(tag) || source.get(tag) === digest;
  const tagsOf = new Map<string, string[]>();
  for (const [tag, digest] of target) tagsOf.set(digest, [...(tagsOf.get(digest) ?? []), tag]);
  for (const [tag, digest] of target) {
    // A target without the Referrers API holds berth-written referrer tags the source never had.
    if (!covered(tag) || source.has(tag) || referredDigest(tag) !== undefined) continue;
    const sharedWith = tagsOf.get(digest)!.find((t) => t !== tag && stays(t, digest));
    drift.extra.push({ tag, digest, ...(sharedWith ? { sharedWith } : {}) });
  }
  return drift;
}

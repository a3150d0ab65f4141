import type { ImageToCopy, RepositoryDrift } from '../activities/index.ts';

/** A manifest a deletion sync deletes, with the tags that go with it. */
export interface Doomed {
  repository: string;
  digest: string;
  tags: string[];
}

/** What a sync copies of a drift: every tag missing on the target or at another digest there, at the source's digest. */
export function imagesToCopy({ repository, missing, different }: RepositoryDrift): ImageToCopy[] {
  return [...missing, ...different].map(({ tag, digest }) => ({ repository, tag, digest }));
}

/**
 * What a deletion sync deletes of a drift once its copies ran (`unfixed`: `repository:tag` of the copies that
 * failed): one manifest per digest, with the tags that go with it. A digest that a staying tag points to is left
 * alone (and stays reported as extra). A tag whose fix failed still points to its old digest: deleting that digest
 * would delete the tag too.
 */
export function manifestsToDelete({ repository, different, extra }: RepositoryDrift, unfixed: ReadonlySet<string>): Doomed[] {
  const stillHeld = new Set(different.filter((d) => unfixed.has(`${repository}:${d.tag}`)).map((d) => d.targetDigest));
  const doomed = new Map<string, string[]>();
  for (const e of extra.filter((x) => !x.sharedWith && !stillHeld.has(x.digest))) doomed.set(e.digest, [...(doomed.get(e.digest) ?? []), e.tag]);
  return [...doomed].map(([digest, tags]) => ({ repository, digest, tags }));
}

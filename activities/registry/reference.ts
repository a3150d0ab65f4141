/** Image references as users write them: `lib/app:1.0`, `lib/app@sha256:...`, `lib/app` (= `:latest`). */
export interface ImageReference {
  repository: string;
  /** A tag or a digest: what goes after /manifests/ in the registry API. */
  reference: string;
}

// The distribution spec's grammar. Names go into URL paths and globs: `..`, empty or upper-case segments and the
// like are not names (and would resolve to other repositories once a URL is normalized).
const component = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const repositoryPattern = new RegExp(`^${component}(?:/${component})*$`);
const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const digestPattern = /^sha256:[a-f0-9]{64}$/;

export function isRepositoryName(name: string): boolean {
  return name.length <= 255 && repositoryPattern.test(name);
}

export function isTag(tag: string): boolean {
  return tagPattern.test(tag);
}

export function parseImageReference(text: string): ImageReference {
  let repository = text;
  let reference = 'latest';
  const at = text.indexOf('@');
  if (at >= 0) {
    repository = text.slice(0, at);
    reference = text.slice(at + 1);
    if (!digestPattern.test(reference)) throw new Error(`"${reference}" is not a sha256 digest`);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon > text.lastIndexOf('/')) {
      repository = text.slice(0, colon);
      reference = text.slice(colon + 1);
      if (!isTag(reference)) throw new Error(`"${reference}" is not a valid tag`);
    }
  }
  if (!isRepositoryName(repository)) {
    throw new Error(`"${repository}" is not a valid repository name (lowercase path components separated by /)`);
  }
  return { repository, reference };
}

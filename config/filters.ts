import type { SyncFilter } from './schema.ts';

/** `*` and `?` match within one path segment, `**` across segments (`library/**` matches `library/a/b`). */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*' && glob[i + 1] === '*') {
      // `**/` also matches nothing, so that `**/app` matches `app`.
      re += glob[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += glob[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** A name passes when it matches an include pattern and no exclude pattern. */
export function compileFilter(filter: SyncFilter): (name: string) => boolean {
  const include = filter.include.map(globToRegExp);
  const exclude = filter.exclude.map(globToRegExp);
  return (name) => include.some((r) => r.test(name)) && !exclude.some((r) => r.test(name));
}

// Pure logic of a sync, without registries: filters and the comparison that decides what is copied or deleted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareTags } from '../activities/sync/drift.ts';
import { compileFilter, globToRegExp } from '../config/filters.ts';

test('globs: * and ? stay within a path segment, ** crosses segments', () => {
  const cases: [string, string, boolean][] = [
    ['library/*', 'library/nginx', true],
    ['library/*', 'library/tools/curl', false],
    ['library/**', 'library/tools/curl', true],
    ['**/curl', 'curl', true],
    ['**/curl', 'a/b/curl', true],
    ['v1.?', 'v1.2', true],
    ['v1.?', 'v1.10', false],
    ['1.0', '1x0', false],
  ];
  for (const [glob, name, expected] of cases) assert.equal(globToRegExp(glob).test(name), expected, `${glob} ~ ${name}`);
  const keep = compileFilter({ include: ['apps/**'], exclude: ['apps/tmp-*'] });
  assert.deepEqual(['apps/web', 'apps/tmp-x', 'other/db', 'apps/team/api'].filter(keep), ['apps/web', 'apps/team/api']);
});

test('drift: missing, different and extra tags; an extra tag whose digest a staying tag shares is not deletable; referrer tags are never extra', () => {
  const source = new Map([
    ['1.0', 'sha256:a'],
    ['1.1', 'sha256:b'],
    ['2.0', 'sha256:c'],
  ]);
  const target = new Map([
    ['1.0', 'sha256:a'],
    ['2.0', 'sha256:old'],
    ['alias', 'sha256:a'],
    ['gone', 'sha256:z'],
    ['rc-keep', 'sha256:z2'],
    ['rc-extra', 'sha256:z2'],
    [`sha256-${'a'.repeat(64)}`, 'sha256:idx'],
  ]);
  // rc-keep is outside the rule's filter: never reported, but it protects its digest.
  const drift = compareTags('apps/web', source, target, (tag) => tag !== 'rc-keep');
  assert.equal(drift.inSync, 1);
  assert.deepEqual(drift.missing, [{ tag: '1.1', digest: 'sha256:b' }]);
  assert.deepEqual(drift.different, [{ tag: '2.0', digest: 'sha256:c', targetDigest: 'sha256:old' }]);
  assert.deepEqual(drift.extra, [
    { tag: 'alias', digest: 'sha256:a', sharedWith: '1.0' },
    { tag: 'gone', digest: 'sha256:z' },
    { tag: 'rc-extra', digest: 'sha256:z2', sharedWith: 'rc-keep' },
  ]);
});

test('drift of one page: only its tags are reported; a tag of another page that the source has protects its digest, one only the target has does not', () => {
  const source = new Map([['b', 'sha256:b']]); // the page's tags the source has
  const target = new Map([
    ['b', 'sha256:old'],
    ['c', 'sha256:x'], // extra, on the page
    ['d', 'sha256:y'], // extra, on the page
    ['a', 'sha256:x'], // another page's tag that the source has (fixed there, later): holds sha256:x until then
    ['e', 'sha256:y'], // another page's tag the source lacks: extra too, deleted with its digest
  ]);
  const inPage = (tag: string) => tag > 'a' && tag <= 'd';
  const drift = compareTags('apps/web', source, target, () => true, inPage, new Set(['a', 'b']));
  assert.deepEqual(drift.different, [{ tag: 'b', digest: 'sha256:b', targetDigest: 'sha256:old' }]);
  assert.deepEqual(drift.missing, []);
  assert.deepEqual(drift.extra, [
    { tag: 'c', digest: 'sha256:x', sharedWith: 'a' },
    { tag: 'd', digest: 'sha256:y' },
  ]);
});

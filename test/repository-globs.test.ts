// Repository globs as projects and sync rules use them (config/filters.ts): pure, no registries.
import assert from 'node:assert/strict';
import { test } from 'node:test';
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

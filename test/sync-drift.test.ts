// The sync's drift decisions as tables: which tags a page reads and on which side, what a page covers, what is
// missing, different, in step or extra (activities/sync/drift.ts), and what the sync then copies and deletes
// (workflows/drift-fixes.ts). Pure: no registries, no Temporal.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compareTags, driftCandidates, pageExtent, type RepositoryDrift } from '../activities/sync/drift.ts';
import { imagesToCopy, manifestsToDelete, type Doomed } from '../workflows/drift-fixes.ts';

const referrer = `sha256-${'a'.repeat(64)}`;
const everything = () => true;

describe('which tags a page reads', () => {
  const cases: { name: string; source: string[]; target: string[]; covered?: (t: string) => boolean; after?: string; candidates: string[]; readOnTarget: string[] }[] = [
    { name: "the source's tags, sorted; read on the target only where its list has them", source: ['v2', 'v1', 'v3'], target: ['v1'], candidates: ['v1', 'v2', 'v3'], readOnTarget: ['v1'] },
    { name: 'a tag only the target lists is a candidate (extra)', source: ['v1'], target: ['v1', 'old'], candidates: ['old', 'v1'], readOnTarget: ['old', 'v1'] },
    { name: 'tags the rule does not cover are skipped on both sides', source: ['v1', 'rc1'], target: ['rc2'], covered: (t) => !t.startsWith('rc'), candidates: ['v1'], readOnTarget: [] },
    { name: 'referrer tags travel with their subject: never candidates', source: ['v1', referrer], target: [`${referrer}.sig`], candidates: ['v1'], readOnTarget: [] },
    { name: 'a later page starts after its cursor', source: ['a', 'b', 'c'], target: ['a', 'd'], after: 'b', candidates: ['c', 'd'], readOnTarget: ['d'] },
    { name: 'a tag on both lists is one candidate', source: ['v1'], target: ['v1'], candidates: ['v1'], readOnTarget: ['v1'] },
    { name: 'nothing on either side: nothing to read', source: [], target: [], candidates: [], readOnTarget: [] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { candidates, onSource, onTarget } = driftCandidates({ source: c.source, target: c.target }, c.covered ?? everything, c.after);
      assert.deepEqual(candidates, c.candidates);
      assert.deepEqual(
        candidates.filter((t) => onTarget.has(t)),
        c.readOnTarget,
      );
      // A covered tag the source lists is read there even on another page: it protects its digest (see below).
      assert.deepEqual([...onSource].sort(), c.source.filter(c.covered ?? everything).sort());
    });
  }
});

describe('what a page covers', () => {
  const candidates = ['b', 'c', 'd', 'e'];
  const cases: { name: string; walked: number; after?: string; covers: string[]; next?: string }[] = [
    { name: 'the first page, every candidate read: everything up to the last tag, no cursor', walked: 4, covers: ['a', 'b', 'c', 'd', 'e'] },
    { name: 'stopped after two: the next page starts after the second', walked: 2, covers: ['a', 'b', 'c'], next: 'c' },
    { name: 'a later page covers from after its cursor to its last read tag', walked: 1, after: 'a', covers: ['b'], next: 'b' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { inPage, next } = pageExtent(candidates, c.walked, c.after);
      assert.deepEqual(['a', ...candidates, 'f'].filter(inPage), c.covers);
      assert.equal(next, c.next);
    });
  }

  test('a page that read nothing covers nothing', () => {
    assert.deepEqual(['a', 'b'].filter(pageExtent([], 0).inPage), []);
  });
});

describe('what is copied, in step, left alone or deleted', () => {
  type Case = { name: string; source: [string, string][]; target: [string, string][]; covered?: (t: string) => boolean; inPage?: (t: string) => boolean; sourceTags?: string[]; drift: Omit<RepositoryDrift, 'repository'> };
  const none = { inSync: 0, missing: [], different: [], extra: [] };
  const cases: Case[] = [
    { name: 'the same digest on both sides: in step, nothing to do', source: [['v1', 'sha256:a']], target: [['v1', 'sha256:a']], drift: { ...none, inSync: 1 } },
    { name: 'on the source only: missing, copied', source: [['v1', 'sha256:a']], target: [], drift: { ...none, missing: [{ tag: 'v1', digest: 'sha256:a' }] } },
    { name: 'another digest on the target: different, copied over it', source: [['v1', 'sha256:a']], target: [['v1', 'sha256:b']], drift: { ...none, different: [{ tag: 'v1', digest: 'sha256:a', targetDigest: 'sha256:b' }] } },
    { name: 'on the target only: extra, deletable', source: [], target: [['old', 'sha256:z']], drift: { ...none, extra: [{ tag: 'old', digest: 'sha256:z' }] } },
    {
      name: 'an extra tag at the digest of a tag in step: not deletable (a delete removes the manifest)',
      source: [['v1', 'sha256:a']],
      target: [
        ['v1', 'sha256:a'],
        ['alias', 'sha256:a'],
      ],
      drift: { ...none, inSync: 1, extra: [{ tag: 'alias', digest: 'sha256:a', sharedWith: 'v1' }] },
    },
    {
      name: 'an extra tag at the old digest of a tag being fixed: deletable (nothing keeps that digest)',
      source: [['v1', 'sha256:new']],
      target: [
        ['v1', 'sha256:old'],
        ['alias', 'sha256:old'],
      ],
      drift: { ...none, different: [{ tag: 'v1', digest: 'sha256:new', targetDigest: 'sha256:old' }], extra: [{ tag: 'alias', digest: 'sha256:old' }] },
    },
    {
      name: 'a tag outside the rule is never reported, and protects its digest',
      source: [],
      target: [
        ['keep', 'sha256:k'],
        ['old', 'sha256:k'],
      ],
      covered: (t) => t !== 'keep',
      drift: { ...none, extra: [{ tag: 'old', digest: 'sha256:k', sharedWith: 'keep' }] },
    },
    {
      name: 'referrer tags are neither copied nor extra: they travel with their subject',
      source: [[referrer, 'sha256:r']],
      target: [[`${referrer}.sig`, 'sha256:s']],
      drift: none,
    },
    {
      name: "a page reports only its own tags; another page's source tag protects its digest until it is fixed there",
      source: [['b', 'sha256:b']],
      target: [
        ['a', 'sha256:x'],
        ['c', 'sha256:x'],
        ['d', 'sha256:y'],
        ['e', 'sha256:y'],
      ],
      inPage: (t) => t > 'a' && t <= 'd',
      sourceTags: ['a', 'b'],
      drift: {
        ...none,
        missing: [{ tag: 'b', digest: 'sha256:b' }],
        extra: [
          { tag: 'c', digest: 'sha256:x', sharedWith: 'a' },
          { tag: 'd', digest: 'sha256:y' },
        ],
      },
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const source = new Map(c.source);
      const drift = compareTags('apps/web', source, new Map(c.target), c.covered ?? everything, c.inPage, c.sourceTags ? new Set(c.sourceTags) : undefined);
      assert.deepEqual(drift, { repository: 'apps/web', ...c.drift });
    });
  }
});

describe('what the sync copies and deletes of a drift', () => {
  const drift = (d: Partial<RepositoryDrift>): RepositoryDrift => ({ repository: 'apps/web', inSync: 0, missing: [], different: [], extra: [], ...d });
  const cases: { name: string; drift: RepositoryDrift; unfixed?: string[]; copies: string[]; deletes: Doomed[] }[] = [
    { name: 'in step: nothing', drift: drift({ inSync: 3 }), copies: [], deletes: [] },
    {
      name: "missing and different tags are copied at the source's digest",
      drift: drift({ missing: [{ tag: 'v2', digest: 'sha256:b' }], different: [{ tag: 'v1', digest: 'sha256:a', targetDigest: 'sha256:old' }] }),
      copies: ['apps/web:v2@sha256:b', 'apps/web:v1@sha256:a'],
      deletes: [],
    },
    {
      name: 'extra tags at one digest go with one delete of that manifest',
      drift: drift({
        extra: [
          { tag: 'x', digest: 'sha256:z' },
          { tag: 'y', digest: 'sha256:z' },
          { tag: 'w', digest: 'sha256:w' },
        ],
      }),
      copies: [],
      deletes: [
        { repository: 'apps/web', digest: 'sha256:z', tags: ['x', 'y'] },
        { repository: 'apps/web', digest: 'sha256:w', tags: ['w'] },
      ],
    },
    { name: "an extra tag sharing a staying tag's digest is left alone", drift: drift({ extra: [{ tag: 'alias', digest: 'sha256:a', sharedWith: 'v1' }] }), copies: [], deletes: [] },
    {
      name: 'a tag whose copy failed still points to its old digest: that digest stays',
      drift: drift({ different: [{ tag: 'v1', digest: 'sha256:a', targetDigest: 'sha256:old' }], extra: [{ tag: 'alias', digest: 'sha256:old' }] }),
      unfixed: ['apps/web:v1'],
      copies: ['apps/web:v1@sha256:a'],
      deletes: [],
    },
    {
      name: 'once that copy succeeded, the old digest goes with its extra tag',
      drift: drift({ different: [{ tag: 'v1', digest: 'sha256:a', targetDigest: 'sha256:old' }], extra: [{ tag: 'alias', digest: 'sha256:old' }] }),
      copies: ['apps/web:v1@sha256:a'],
      deletes: [{ repository: 'apps/web', digest: 'sha256:old', tags: ['alias'] }],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      assert.deepEqual(
        imagesToCopy(c.drift).map((i) => `${i.repository}:${i.tag}@${i.digest}`),
        c.copies,
      );
      assert.deepEqual(manifestsToDelete(c.drift, new Set(c.unfixed)), c.deletes);
    });
  }
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

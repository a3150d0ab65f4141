// Pure pieces of the registry protocol: image references, auth challenges, Retry-After, token realms.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRepositoryName, isTag, parseImageReference } from '../activities/registry/reference.ts';
import { parseChallenge, realmRefusal } from '../activities/registry/auth.ts';
import { parseRetryAfter } from '../activities/registry/errors.ts';

const digest = `sha256:${'a'.repeat(64)}`;

test('image references: tag, digest, default tag, and what is refused', () => {
  assert.deepEqual(parseImageReference('lib/app:1.0'), { repository: 'lib/app', reference: '1.0' });
  assert.deepEqual(parseImageReference('lib/app'), { repository: 'lib/app', reference: 'latest' });
  assert.deepEqual(parseImageReference(`lib/app@${digest}`), { repository: 'lib/app', reference: digest });
  assert.throws(() => parseImageReference('Lib/App:1'), /not a valid repository name/);
  assert.throws(() => parseImageReference('lib/app:'), /not a valid tag/);
  assert.throws(() => parseImageReference('lib/app@sha256:xyz'), /not a sha256 digest/);
});

test('WWW-Authenticate challenges parse as registries send them', () => {
  assert.deepEqual(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:lib/app:pull,push"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:lib/app:pull,push' },
  });
  assert.deepEqual(parseChallenge('Basic realm="basic-realm"'), { scheme: 'basic', params: { realm: 'basic-realm' } });
});

test('Retry-After in seconds or as an HTTP date', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter(undefined), undefined);
  const inTenSeconds = new Date(Date.now() + 10_000).toUTCString();
  assert.ok(Math.abs(parseRetryAfter(inTenSeconds)! - 10_000) < 1500);
});

test("credentials go only to a token realm on the registry's own host or a trusted one, never from https to http", () => {
  assert.match(realmRefusal('https://registry.example', 'http://registry.example/token', [])!, /plain http/);
  assert.equal(realmRefusal('https://registry.example', 'https://registry.example:8443/token', []), undefined);
  assert.equal(realmRefusal('http://127.0.0.1:5000', 'http://127.0.0.1:5001/token', []), undefined);
  assert.match(realmRefusal('http://127.0.0.1:5000', 'http://127.0.0.2:5001/token', [])!, /another host than 127\.0\.0\.1, not among its trustedTokenRealms/);
  assert.equal(realmRefusal('https://registry-1.docker.io', 'https://auth.docker.io/token', ['https://auth.docker.io']), undefined);
  assert.match(realmRefusal('https://registry-1.docker.io', 'https://auth.docker.io:8443/token', ['https://auth.docker.io'])!, /another host/);
  assert.match(realmRefusal('https://registry.example', 'http://auth.example/token', ['http://auth.example'])!, /plain http/);
});

test('names from a registry: the distribution grammar, nothing that walks out of a repository', () => {
  for (const name of ['team-a/app', 'a', 'a/b/c', 'my_app', 'a__b/c-d', 'a.b/c---d']) assert.ok(isRepositoryName(name), name);
  for (const name of ['team-a/../team-b/app', '..', 'a//b', '/a', 'a/', 'A/b', 'a/./b', 'a b', 'a%2f..', '', 'x'.repeat(256)]) assert.ok(!isRepositoryName(name), name);
  for (const tag of ['1.0', 'latest', '_x', 'sha256-abc.sig', 'A'.repeat(128)]) assert.ok(isTag(tag), tag);
  for (const tag of ['..', '.x', '-x', 'a/b', '1.0/../x', '', 'A'.repeat(129)]) assert.ok(!isTag(tag), tag);
});

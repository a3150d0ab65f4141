// Pure pieces of the registry protocol: image references, auth challenges, Retry-After, token realms.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseImageReference } from '../activities/registry/reference.ts';
import { parseChallenge, realmKeepsCredentialsSafe } from '../activities/registry/auth.ts';
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

test('credentials of an https registry never go to an http token realm', () => {
  assert.equal(realmKeepsCredentialsSafe('https://registry.example', 'http://auth.example/token'), false);
  assert.equal(realmKeepsCredentialsSafe('https://registry.example', 'https://auth.example/token'), true);
  assert.equal(realmKeepsCredentialsSafe('http://127.0.0.1:5000', 'http://127.0.0.1:5001/token'), true);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/activity';
import { asTemporalFailure } from '../activities/failures.ts';
import { HostError } from '../activities/hosts/errors.ts';

const failureOf = (err: Error) => asTemporalFailure(() => Promise.reject(err)).then(() => assert.fail('resolved'), (f: unknown) => f);

test('a classified error becomes a failure of its type, retried only when it says so', async () => {
  const permanent = (await failureOf(new HostError('SecretUnavailable', 'no key'))) as ApplicationFailure;
  assert.ok(permanent instanceof ApplicationFailure);
  assert.deepEqual([permanent.type, permanent.nonRetryable, permanent.message], ['SecretUnavailable', true, 'no key']);
});

test('a Temporal failure passes as it is: a retryable one stays retryable', async () => {
  const retryable = ApplicationFailure.retryable('registry busy', 'RegistryBusy');
  assert.equal(await failureOf(retryable), retryable);
  assert.equal(retryable.nonRetryable, false);
});

test('an unclassified error passes as it is (Temporal retries it)', async () => {
  const plain = new Error('socket hang up');
  assert.equal(await failureOf(plain), plain);
});

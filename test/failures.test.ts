import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/activity';
import { asTemporalFailure } from '../activities/failures.ts';
import { ProviderError } from '../activities/cloud/provider.ts';
import { HostError } from '../activities/hosts/errors.ts';
import { RegistryError } from '../activities/registry/errors.ts';
import { ClassifiedError } from '../contracts/classified-error.ts';
import { InventoryError } from '../inventory/errors.ts';

const failureOf = (err: Error) =>
  asTemporalFailure(() => Promise.reject(err)).then(
    () => assert.fail('resolved'),
    (f: unknown) => f,
  );

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

test('registry, host, provider and inventory errors share one base: type, retryable, retry-after and details', async () => {
  const cases: [ClassifiedError, { type: string; nonRetryable: boolean; nextRetryDelay?: number; details?: unknown[] }][] = [
    [new RegistryError('RegistryUnavailable', 'HTTP 429', { status: 429, retryAfterMs: 7000 }), { type: 'RegistryUnavailable', nonRetryable: false, nextRetryDelay: 7000 }],
    [new RegistryError('RegistryAuthError', 'HTTP 401', { status: 401 }), { type: 'RegistryAuthError', nonRetryable: true }],
    [new ProviderError('ProviderUnavailable', 'EC2 throttled', { retryAfterMs: 3000 }), { type: 'ProviderUnavailable', nonRetryable: false, nextRetryDelay: 3000 }],
    [new ProviderError('ProviderRejected', 'bad image'), { type: 'ProviderRejected', nonRetryable: true }],
    [new HostError('HostUnreachable', 'refused'), { type: 'HostUnreachable', nonRetryable: false }],
    [new HostError('InitStepFailed', 'sysctl failed', { step: 'sysctl', stderr: 'permission denied' }), { type: 'InitStepFailed', nonRetryable: true, details: [{ step: 'sysctl', stderr: 'permission denied' }] }],
    [new InventoryError('UnknownMachine', 'no machine m-1'), { type: 'UnknownMachine', nonRetryable: true }],
  ];
  for (const [err, expected] of cases) {
    assert.ok(err instanceof ClassifiedError, err.type);
    const f = (await failureOf(err)) as ApplicationFailure;
    assert.ok(f instanceof ApplicationFailure, err.type);
    assert.deepEqual({ type: f.type, nonRetryable: f.nonRetryable, nextRetryDelay: f.nextRetryDelay, details: f.details }, { nextRetryDelay: undefined, details: undefined, ...expected }, `${err.type}: ${err.message}`);
    assert.equal(f.message, err.message);
  }
});

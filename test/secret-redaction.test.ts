// Init `script` steps are the operator's own text and may print anything. Secrets this worker knows (every one
// berth.yaml references: here a registry password and the cluster's SSH key) are taken out of the command text,
// the stderr and the step reports before they reach a failure (and from there the history and the inventory).
// A real host over real SSH; the initMachine activity as the IDC worker runs it.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { ApplicationFailure } from '@temporalio/common';
import { stringify } from 'yaml';
import type { CloudProvider } from '../activities/cloud/provider.ts';
import { createHostActivities, type StepResult } from '../activities/hosts/index.ts';
import { parseConfig } from '../config/load.ts';
import { hostEngine, machineSpec, removeCluster, sshKeyPair, testClusterName, testDockerProvider, testHost, type TestHost } from '../testbed/hosts.ts';
import { recordSecret } from '../testbed/secrets.ts';

const cluster = testClusterName('redact');
const keys = sshKeyPair();
const password = randomBytes(12).toString('hex');
recordSecret(password);
// A line from the middle of the private key: output may hold a part of a multi-line secret.
const keyLine = keys.privateKey.split('\n').find((l) => l.length > 40)!;
let provider: CloudProvider;
let host: TestHost;

before(async () => {
  provider = await testDockerProvider(cluster);
  host = await testHost(provider, machineSpec(cluster, 'host-r', keys.publicKey), keys.privateKey);
});

after(async () => {
  host?.session.close();
  await removeCluster((await hostEngine()).docker, cluster);
});

test('script steps: known secrets never reach a failure, its stack, its details or a step report', async () => {
  const vars = { password: `BERTH_TEST_REDACT_PW_${process.pid}`, key: `BERTH_TEST_REDACT_KEY_${process.pid}` };
  process.env[vars.password] = password;
  process.env[vars.key] = keys.privateKey;
  const raw = {
    idcs: [{ name: 'idc-a' }],
    registries: [{ name: 'registry-a', idc: 'idc-a', url: 'http://127.0.0.1:5001', credentials: { username: 'berth', passwordEnv: vars.password } }],
    rateCard: { docker: { small: 0.012 } },
    initProfiles: {
      // Its check names the secret (a templated path): the report of the change quotes the check.
      quiet: [{ script: { name: 'marker', check: `test -e /var/tmp/berth-${password}`, run: `touch /var/tmp/berth-${password}` } }],
      // Fails, quoting the secret in its command and echoing it, and a part of the SSH key, on stderr.
      leaky: [{ script: { name: 'login', check: 'false', run: `echo "docker login -u berth -p ${password}: unauthorized" >&2; echo '${keyLine}' >&2; exit 3` } }],
    },
    clusters: [
      {
        name: cluster,
        idc: 'idc-a',
        provider: { kind: 'docker' },
        ssh: { user: 'root', privateKey: { env: vars.key } },
        pools: [
          { name: 'quiet', instanceType: 'small', initProfile: 'quiet' },
          { name: 'leaky', instanceType: 'small', initProfile: 'leaky' },
        ],
      },
    ],
  };
  const activities = createHostActivities(parseConfig(stringify(raw), '/tmp/berth-redaction-test.yaml'));
  const env = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
  const where = { cluster, address: host.machine.address!, sshPort: host.machine.sshPort!, hostKeyFingerprint: host.session.hostKeyFingerprint, machineName: 'host-r' };
  const leaks = (text: string) => [password, keyLine].filter((s) => text.includes(s));

  const report: StepResult[] = await env.run(activities.initMachine, { ...where, pool: 'quiet' });
  assert.deepEqual(
    report.map((r) => r.status),
    ['changed'],
  );
  assert.match(report[0].detail, /check `test -e \/var\/tmp\/berth-\[redacted\]` exited 1/);
  assert.deepEqual(leaks(JSON.stringify(report)), []);
  assert.equal((await host.session.run(`test -e /var/tmp/berth-${password} && echo yes`)).trim(), 'yes', 'the script itself ran with the secret');

  const err = await env.run(activities.initMachine, { ...where, pool: 'leaky' }).then(
    () => assert.fail('the leaky script fails'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApplicationFailure);
  assert.equal(err.type, 'InitStepFailed');
  assert.match(err.message, /^init step 1 \(script:login\) failed: `echo "docker login -u berth -p \[redacted\]: unauthorized" .*` exited 3: docker login -u berth -p \[redacted\]: unauthorized\n\[redacted\]$/s);
  const everything = [err.message, err.stack ?? '', JSON.stringify(err.details)];
  for (let cause: Error | undefined = err.cause; cause; cause = cause.cause as Error | undefined) everything.push(cause.message, cause.stack ?? '');
  assert.deepEqual(leaks(everything.join('\n')), []);
  assert.match(JSON.stringify(err.details), /"stderr":"docker login -u berth -p \[redacted\]: unauthorized\\n\[redacted\]"/);
});

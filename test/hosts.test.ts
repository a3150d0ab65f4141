// Init profiles over real SSH to real hosts: containers of the docker provider, each with its own sshd. Every step
// probes, applies only what differs and verifies; a second run changes nothing. Also: host key pinning, sudo -n for
// a non-root user, command timeouts, and the activities that resolve the private key by reference.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { ApplicationFailure } from '@temporalio/common';
import { stringify } from 'yaml';
import { z } from 'zod';
import type { CloudProvider } from '../activities/cloud/provider.ts';
import { HostError } from '../activities/hosts/errors.ts';
import { createHostActivities } from '../activities/hosts/index.ts';
import { runInitProfile } from '../activities/hosts/profile.ts';
import { SshSession } from '../activities/hosts/session.ts';
import { parseConfig } from '../config/load.ts';
import { initStepSchema } from '../config/schema.ts';
import { hostEngine, machineSpec, removeCluster, sshKeyPair, testClusterName, testDockerProvider, testHost, type TestHost } from '../testbed/hosts.ts';

const cluster = testClusterName('hosts');
const keys = sshKeyPair();
let provider: CloudProvider;
let root: TestHost;
let deploy: TestHost;
const sessions: SshSession[] = [];

const profile = (steps: unknown[]) => z.array(initStepSchema).parse(steps);
const statuses = (results: { step: string; status: string }[]) => Object.fromEntries(results.map((r) => [r.step, r.status]));
const reconnect = async (host: TestHost, hostKeyFingerprint?: string) => {
  const session = await SshSession.connect({ address: host.machine.address!, port: host.machine.sshPort!, user: host.user, privateKey: host.privateKey, hostKeyFingerprint });
  sessions.push(session);
  return session;
};

before(async () => {
  provider = await testDockerProvider(cluster);
  [root, deploy] = await Promise.all([
    testHost(provider, machineSpec(cluster, 'host-a', keys.publicKey), keys.privateKey),
    testHost(provider, machineSpec(cluster, 'host-b', keys.publicKey, { sshUser: 'deploy' }), keys.privateKey),
  ]);
  sessions.push(root.session, deploy.session);
});

after(async () => {
  for (const s of sessions) s.close();
  await removeCluster((await hostEngine()).docker, cluster);
});

describe('init profiles over SSH', () => {
  // The profile `base` of the demo. 4096 is this kernel's default for net.core.somaxconn in a machine's own network
  // namespace, so the live value stays as it was and the persisted file is the change.
  const base = profile([{ hostname: {} }, { chrony: { servers: ['127.0.0.1'] } }, { sysctl: { 'net.core.somaxconn': 4096 } }, { packages: ['less', 'jq'] }]);

  test('profile base: the first run changes the host, the second changes nothing', async () => {
    const first = await runInitProfile(root.session, base, { machineName: 'host-a' });
    assert.deepEqual(statuses(first), { hostname: 'changed', chrony: 'changed', sysctl: 'changed', packages: 'changed' });
    const second = await runInitProfile(root.session, base, { machineName: 'host-a' });
    assert.deepEqual(statuses(second), { hostname: 'ok', chrony: 'ok', sysctl: 'ok', packages: 'ok' });

    const s = root.session;
    assert.equal((await s.run('hostname')).trim(), 'host-a');
    assert.match(await s.run('cat /etc/hosts'), /^127\.0\.1\.1 host-a$/m);
    assert.equal((await s.run('sysctl -n net.core.somaxconn')).trim(), '4096');
    assert.match(await s.run('cat /etc/sysctl.d/90-berth.conf'), /^net\.core\.somaxconn = 4096$/m);
    assert.match(await s.run('cat /etc/chrony/chrony.conf'), /^server 127\.0\.0\.1 iburst$/m);
    assert.doesNotMatch(await s.run('cat /etc/chrony/chrony.conf'), /pool/);
    assert.equal((await s.run("dpkg-query -W -f='${db:Status-Status} ' less jq chrony")).trim(), 'installed installed installed');
    assert.match(first.find((r) => r.step === 'chrony')!.detail, /not \(re\)started: this host has no service manager/);
  });

  test('docker step: the engine package and daemon.json (mirror, log rotation), the engine running and restarted when the file changes', async () => {
    // No service manager in these machines: the step starts dockerd itself, and the machine is made to hold it.
    const steps = profile([{ docker: { logMaxSize: '20m', logMaxFiles: 5 } }]);
    const ctx = { machineName: 'host-a', registryMirror: 'http://127.0.0.1:5001' };
    const [first] = await runInitProfile(root.session, steps, ctx);
    assert.equal(first.status, 'changed');
    assert.equal((await root.session.run("dpkg-query -W -f='${db:Status-Status}' docker.io")).trim(), 'installed');
    assert.deepEqual(JSON.parse(await root.session.run("docker info --format '{{json .RegistryConfig.Mirrors}}'")), ['http://127.0.0.1:5001/']);
    assert.equal((await root.session.run("docker info --format '{{.LoggingDriver}}'")).trim(), 'json-file');
    assert.deepEqual(JSON.parse(await root.session.run('cat /etc/docker/daemon.json')), {
      'registry-mirrors': ['http://127.0.0.1:5001'],
      'log-driver': 'json-file',
      'log-opts': { 'max-size': '20m', 'max-file': '5' },
    });
    const pid = (await root.session.run('pidof dockerd')).trim();
    const [second] = await runInitProfile(root.session, steps, ctx);
    assert.equal(second.status, 'ok');
    assert.equal((await root.session.run('pidof dockerd')).trim(), pid);
    // A hand edit is drift: the next run puts berth's file back and restarts the engine to read it.
    await root.session.run(`echo '{"debug": true}' > /etc/docker/daemon.json`);
    const [third] = await runInitProfile(root.session, steps, ctx);
    assert.equal(third.status, 'changed');
    assert.notEqual((await root.session.run('pidof dockerd')).trim(), pid);
    // A stopped engine is drift too: started again.
    await root.session.run('kill $(pidof dockerd); while pidof dockerd >/dev/null; do sleep 0.1; done');
    const [fourth] = await runInitProfile(root.session, steps, ctx);
    assert.equal(fourth.status, 'changed');
    assert.match(fourth.detail, /the engine did not answer docker info/);
    assert.equal((await root.session.run("docker info --format '{{.ServerVersion}}'")).trim().length > 0, true);
    await assert.rejects(runInitProfile(root.session, steps, { machineName: 'host-a' }), /init step 1 \(docker\) failed: .*IDC has no registry/);
  });

  test('docker step for a login other than root: it joins group docker, so it reaches the engine without sudo', async () => {
    const [result] = await runInitProfile(deploy.session, profile([{ docker: { mirror: false } }]), { machineName: 'host-b' });
    assert.equal(result.status, 'changed');
    assert.equal((await deploy.session.run('su deploy -c "docker info --format \'{{.LoggingDriver}}\'"')).trim(), 'json-file');
  });

  test('a failing step stops the profile and reports the step and the command stderr', async () => {
    const steps = profile([
      { script: { name: 'marker', check: 'test -e /var/tmp/berth-marker', run: 'touch /var/tmp/berth-marker' } },
      { script: { name: 'license', check: 'false', run: 'echo "cannot reach the license server" >&2; exit 3' } },
      { script: { name: 'after', check: 'test -e /var/tmp/berth-after', run: 'touch /var/tmp/berth-after' } },
    ]);
    await assert.rejects(runInitProfile(root.session, steps, { machineName: 'host-a' }), (err: HostError) => {
      assert.equal(err.type, 'InitStepFailed');
      assert.equal(err.retryable, false);
      assert.equal(err.opts.step, 'script:license');
      assert.equal(err.opts.stderr, 'cannot reach the license server');
      assert.match(err.message, /^init step 2 \(script:license\) failed: `echo .*` exited 3: cannot reach the license server$/);
      return true;
    });
    assert.equal((await root.session.run('test -e /var/tmp/berth-marker && echo yes')).trim(), 'yes');
    assert.equal((await root.session.run('test -e /var/tmp/berth-after && echo yes || echo no')).trim(), 'no');
  });

  test('the host key seen on first contact is verified on every later connection', async () => {
    const pinned = await reconnect(root, root.session.hostKeyFingerprint);
    assert.equal(pinned.hostKeyFingerprint, root.session.hostKeyFingerprint);
    // Another machine answering at the pinned address looks like this: the other host's key.
    await assert.rejects(reconnect(root, deploy.session.hostKeyFingerprint), (err: HostError) => {
      assert.equal(err.type, 'HostKeyMismatch');
      assert.equal(err.retryable, false);
      assert.ok(err.message.includes(root.session.hostKeyFingerprint) && err.message.includes(deploy.session.hostKeyFingerprint), err.message);
      return true;
    });
  });

  test('a non-root user runs every command through sudo -n; a user without sudo fails at once, never prompting', async () => {
    assert.equal((await deploy.session.run('id -un')).trim(), 'root');
    const other = sshKeyPair('second-admin');
    const steps = profile([{ hostname: {} }, { 'authorized-keys': { user: 'deploy', keys: [other.publicKey] } }, { sysctl: { 'net.core.somaxconn': 4096 } }]);
    assert.deepEqual(statuses(await runInitProfile(deploy.session, steps, { machineName: 'host-b' })), { hostname: 'changed', 'authorized-keys': 'changed', sysctl: 'changed' });
    assert.deepEqual(statuses(await runInitProfile(deploy.session, steps, { machineName: 'host-b' })), { hostname: 'ok', 'authorized-keys': 'ok', sysctl: 'ok' });
    // The added key logs in, and the key the machine was made with is still there.
    const asOther = await SshSession.connect({ address: deploy.machine.address!, port: deploy.machine.sshPort!, user: 'deploy', privateKey: other.privateKey });
    sessions.push(asOther);
    assert.equal((await asOther.run('stat -c %U ~deploy/.ssh/authorized_keys')).trim(), 'deploy');
    assert.equal((await asOther.run('wc -l < ~deploy/.ssh/authorized_keys')).trim(), '2');

    await root.session.run('id plain >/dev/null 2>&1 || useradd -m plain; mkdir -p ~plain/.ssh; cp ~/.ssh/authorized_keys ~plain/.ssh/; chown -R plain: ~plain/.ssh');
    const plain = await SshSession.connect({ address: root.machine.address!, port: root.machine.sshPort!, user: 'plain', privateKey: keys.privateKey });
    sessions.push(plain);
    await assert.rejects(plain.run('true', { timeoutMs: 10_000 }), (err: HostError) => err.type === 'CommandFailed' && /sudo: a password is required/.test(err.message));
  });

  test('every command has a timeout; the connection stays usable after one', async () => {
    await assert.rejects(root.session.exec('sleep 20', { timeoutMs: 300 }), (err: HostError) => err.type === 'CommandTimeout' && err.retryable);
    assert.equal((await root.session.run('echo still here')).trim(), 'still here');
  });
});

describe('host activities', () => {
  test('waitForSsh records the host key; initMachine resolves the key by reference and refuses another host key', async () => {
    const keyVar = `BERTH_TEST_SSH_KEY_${cluster.replace(/-/g, '_').toUpperCase()}`;
    process.env[keyVar] = keys.privateKey;
    const raw = {
      idcs: [{ name: 'idc-a' }],
      registries: [{ name: 'registry-a', idc: 'idc-a', url: 'http://127.0.0.1:5001' }],
      rateCard: { docker: { small: 0.012 } },
      initProfiles: { base: [{ hostname: {} }, { sysctl: { 'net.core.somaxconn': 4096 } }] },
      clusters: [{ name: cluster, idc: 'idc-a', provider: { kind: 'docker' }, ssh: { user: 'root', privateKey: { env: keyVar } }, pools: [{ name: 'web', instanceType: 'small', initProfile: 'base' }] }],
    };
    const activities = createHostActivities(parseConfig(stringify(raw), '/tmp/berth-hosts-test.yaml'));
    // The failures asserted below are expected: keep the environment's own failure log quiet.
    const env = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
    const where = { cluster, address: root.machine.address!, sshPort: root.machine.sshPort! };

    type Activities = typeof activities;
    const { hostKeyFingerprint }: Awaited<ReturnType<Activities['waitForSsh']>> = await env.run(activities.waitForSsh, where);
    assert.equal(hostKeyFingerprint, root.session.hostKeyFingerprint);
    const results: Awaited<ReturnType<Activities['initMachine']>> = await env.run(activities.initMachine, { ...where, pool: 'web', machineName: 'host-a', hostKeyFingerprint });
    assert.deepEqual(statuses(results), { hostname: 'ok', sysctl: 'ok' });

    await assert.rejects(env.run(activities.initMachine, { ...where, pool: 'web', machineName: 'host-a', hostKeyFingerprint: deploy.session.hostKeyFingerprint }), (err: ApplicationFailure) => {
      assert.equal(err.type, 'HostKeyMismatch');
      assert.equal(err.nonRetryable, true);
      return true;
    });
    await assert.rejects(env.run(activities.waitForSsh, { ...where, sshPort: 70000 }), (err: ApplicationFailure) => err.type === 'InvalidInput' && /sshPort/.test(err.message));
    // The key is resolved on the worker, from the reference: a missing or unreadable one fails at once, saying which.
    process.env[keyVar] = 'not a key';
    await assert.rejects(env.run(activities.waitForSsh, where), (err: ApplicationFailure) => err.type === 'SecretUnavailable' && err.nonRetryable);
    delete process.env[keyVar];
    await assert.rejects(env.run(activities.waitForSsh, where), (err: ApplicationFailure) => err.type === 'SecretUnavailable' && err.message.includes(keyVar));
  });
});

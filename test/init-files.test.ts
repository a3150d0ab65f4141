// The `files` init step over real SSH to real hosts (containers of the docker provider): whole files with mode and
// owner, compared by sha256 on the host, uploaded over SFTP only when they differ and renamed into place; content
// from berth.yaml or from a secret by reference that never appears in a report. Bad entries are refused by config.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type { ApplicationFailure } from '@temporalio/common';
import { stringify } from 'yaml';
import { z } from 'zod';
import type { HostError } from '../activities/hosts/errors.ts';
import { createHostActivities, type StepResult } from '../activities/hosts/index.ts';
import { runInitProfile } from '../activities/hosts/profile.ts';
import { ConfigError, parseConfig } from '../config/load.ts';
import { initStepSchema } from '../config/schema.ts';
import { hostEngine, machineSpec, removeCluster, sshKeyPair, testClusterName, testDockerProvider, testHost, type TestHost } from '../testbed/hosts.ts';
import { recordSecret } from '../testbed/secrets.ts';

const cluster = testClusterName('files');
const keys = sshKeyPair();
let root: TestHost;
let deploy: TestHost;

const profile = (steps: unknown[]) => z.array(initStepSchema).parse(steps);
const ctx = { machineName: 'host-a' };
/** Content, then `mode owner:group` of each path, as the host has them. */
const onHost = (host: TestHost, ...paths: string[]) => host.session.run('for p in "$@"; do printf "%s|" "$(cat "$p")"; stat -c "%a %U:%G" "$p"; done', { args: paths });
/** Files berth left behind: uploads in the user's home, temporary files beside the targets. */
const leftovers = (host: TestHost, ...dirs: string[]) => host.session.run('ls -A ~ "$@" | grep -e berth-upload -e "\\.berth-" || true', { args: dirs });

before(async () => {
  const provider = await testDockerProvider(cluster);
  [root, deploy] = await Promise.all([
    testHost(provider, machineSpec(cluster, 'host-a', keys.publicKey), keys.privateKey),
    testHost(provider, machineSpec(cluster, 'host-b', keys.publicKey, { sshUser: 'deploy' }), keys.privateKey),
  ]);
});

after(async () => {
  root?.session.close();
  deploy?.session.close();
  await removeCluster((await hostEngine()).docker, cluster);
});

describe('files init step', () => {
  const files = profile([
    {
      files: [
        { path: '/etc/berth-files/motd', content: 'welcome to host-a\n' },
        { path: '/opt/app/conf.d/app.conf', content: 'listen = 8080\nname = "ü"\n', mode: '0640', group: 'nogroup' },
      ],
    },
  ]);

  test('the first run writes each file with its mode and owner, a second run changes nothing', async () => {
    const [first] = await runInitProfile(root.session, files, ctx);
    assert.equal(first.status, 'changed');
    assert.equal(first.detail, 'files /etc/berth-files/motd (0644 root:root), /opt/app/conf.d/app.conf (0640 root:nogroup) (/etc/berth-files/motd did not exist; /opt/app/conf.d/app.conf did not exist)');
    assert.equal(await onHost(root, '/etc/berth-files/motd', '/opt/app/conf.d/app.conf'), 'welcome to host-a|644 root:root\nlisten = 8080\nname = "ü"|640 root:nogroup\n');
    assert.equal(await leftovers(root, '/etc/berth-files', '/opt/app/conf.d'), '');
    const [second] = await runInitProfile(root.session, files, ctx);
    assert.equal(second.status, 'ok');
  });

  test('a drifted file is repaired: its content, its mode, its owner', async () => {
    await runInitProfile(root.session, files, ctx);
    await root.session.run('echo edited >> /etc/berth-files/motd; chmod 0666 /opt/app/conf.d/app.conf; chown nobody /opt/app/conf.d/app.conf');
    const [repaired] = await runInitProfile(root.session, files, ctx);
    assert.equal(repaired.status, 'changed');
    assert.match(repaired.detail, /\(\/etc\/berth-files\/motd had other content; \/opt\/app\/conf\.d\/app\.conf was 666 nobody:nogroup\)$/);
    assert.equal(await onHost(root, '/etc/berth-files/motd', '/opt/app/conf.d/app.conf'), 'welcome to host-a|644 root:root\nlisten = 8080\nname = "ü"|640 root:nogroup\n');
    assert.equal((await runInitProfile(root.session, files, ctx))[0].status, 'ok');

    // A directory where the file belongs is not replaced: the step fails and says why.
    await root.session.run('rm /etc/berth-files/motd; mkdir /etc/berth-files/motd');
    await assert.rejects(runInitProfile(root.session, files, ctx), (err: HostError) => {
      assert.equal(err.type, 'InitStepFailed');
      assert.match(err.message, /^init step 1 \(files\) failed: `install \/etc\/berth-files\/motd` exited 1: .*directory/);
      return true;
    });
    assert.equal((await root.session.run('test -d /etc/berth-files/motd && echo dir')).trim(), 'dir');
    assert.equal(await leftovers(root, '/etc/berth-files'), '');
  });

  test('a non-root user uploads to its own home over SFTP; the file is installed as root with its owner', async () => {
    const own = profile([{ files: [{ path: '/etc/berth-files/deploy.env', content: 'TOKEN_FILE=/run/token\n', mode: '0600', owner: 'deploy', group: 'deploy' }] }]);
    assert.equal((await runInitProfile(deploy.session, own, { machineName: 'host-b' }))[0].status, 'changed');
    assert.equal(await onHost(deploy, '/etc/berth-files/deploy.env'), 'TOKEN_FILE=/run/token|600 deploy:deploy\n');
    assert.equal(await leftovers(deploy, '/etc/berth-files'), '');
    assert.equal((await runInitProfile(deploy.session, own, { machineName: 'host-b' }))[0].status, 'ok');
  });

  test('content from a secret by reference is written on the host and named in no report or failure', async () => {
    const secretVar = `BERTH_TEST_FILE_SECRET_${cluster.replace(/-/g, '_').toUpperCase()}`;
    const keyVar = `BERTH_TEST_SSH_KEY_${cluster.replace(/-/g, '_').toUpperCase()}`;
    const secret = `api-token-${Math.random().toString(36).slice(2)}`;
    recordSecret(secret);
    process.env[secretVar] = secret;
    process.env[keyVar] = keys.privateKey;
    const raw = {
      idcs: [{ name: 'idc-a' }],
      registries: [{ name: 'registry-a', idc: 'idc-a', url: 'http://127.0.0.1:5001' }],
      rateCard: { docker: { small: 0.012 } },
      initProfiles: { base: [{ files: [{ path: '/etc/berth-files/token', contentFrom: { env: secretVar }, mode: '0400' }] }] },
      clusters: [{ name: cluster, idc: 'idc-a', provider: { kind: 'docker' }, ssh: { user: 'root', privateKey: { env: keyVar } }, pools: [{ name: 'web', instanceType: 'small', initProfile: 'base' }] }],
    };
    const activities = createHostActivities(parseConfig(stringify(raw), '/tmp/berth-files-test.yaml'));
    const env = new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR') });
    const input = { cluster, address: root.machine.address!, sshPort: root.machine.sshPort!, pool: 'web', machineName: 'host-a', hostKeyFingerprint: root.session.hostKeyFingerprint };
    try {
      const initMachine = (): Promise<StepResult[]> => env.run(activities.initMachine, input);
      const results = await initMachine();
      assert.deepEqual(results, [{ step: 'files', status: 'changed', detail: 'files /etc/berth-files/token (0400 root:root) (/etc/berth-files/token did not exist)' }]);
      assert.equal(await onHost(root, '/etc/berth-files/token'), `${secret}|400 root:root\n`);
      // The secret changes: the file follows, and the report still says only that the content differed.
      process.env[secretVar] = `${secret}-rotated`;
      recordSecret(`${secret}-rotated`);
      const [rotated] = await initMachine();
      assert.equal(rotated.detail, 'files /etc/berth-files/token (0400 root:root) (/etc/berth-files/token had other content)');
      assert.equal(await onHost(root, '/etc/berth-files/token'), `${secret}-rotated|400 root:root\n`);
      // A reference this worker cannot resolve fails at once, naming it, and leaves the file as it was.
      delete process.env[secretVar];
      await assert.rejects(initMachine(), (err: ApplicationFailure) => {
        assert.equal(err.type, 'InitStepFailed');
        assert.equal(err.nonRetryable, true);
        assert.ok(err.message.includes(secretVar) && !err.message.includes(secret), err.message);
        return true;
      });
      assert.equal(await onHost(root, '/etc/berth-files/token'), `${secret}-rotated|400 root:root\n`);
    } finally {
      delete process.env[secretVar];
      delete process.env[keyVar];
    }
  });

  test('bad entries are refused by config, each problem naming its YAML path', () => {
    const yaml = (entries: unknown[]) => stringify({ idcs: [{ name: 'idc-a' }], registries: [{ name: 'registry-a', idc: 'idc-a', url: 'http://127.0.0.1:5001' }], initProfiles: { base: [{ hostname: {} }, { files: entries }] } });
    const problems = (entries: unknown[]) => {
      try {
        parseConfig(yaml(entries), 'berth.yaml');
      } catch (err) {
        assert.ok(err instanceof ConfigError, String(err));
        return err.problems;
      }
      return assert.fail('the config should be refused');
    };
    assert.deepEqual(
      problems([
        { path: 'etc/motd', content: 'x', mode: 644 },
        { path: '/etc/a', content: 'x', mode: '0999', owner: 'Root' },
        { path: '/etc/b', content: 'x', contentFrom: { env: 'B' } },
        { path: '/etc/c', contentFrom: { file: 'secrets/c' } },
        { path: '/etc/a', content: 'y', size: 1 },
      ]),
      [
        'initProfiles.base[1].files[0].path: must be an absolute path to a file (starting with /, not ending with /, no control characters)',
        'initProfiles.base[1].files[0].mode: must be an octal mode in quotes, like "0644" (unquoted, YAML reads 0644 as the number 644)',
        'initProfiles.base[1].files[1].mode: must be an octal mode like "0644" or "2750"',
        'initProfiles.base[1].files[1].owner: must be a Unix user or group name',
        'initProfiles.base[1].files[2]: set exactly one of content or contentFrom',
        'initProfiles.base[1].files[3].contentFrom.file: must be an absolute path',
        'initProfiles.base[1].files[4]: Unrecognized key: "size"',
      ],
    );
    assert.deepEqual(
      problems([
        { path: '/etc/a', content: 'x' },
        { path: '/etc/a', content: 'y' },
      ]),
      ['initProfiles.base[1].files[1].path: /etc/a is listed twice'],
    );
    assert.deepEqual(problems([]), ['initProfiles.base[1].files: Too small: expected array to have >=1 items']);
  });
});

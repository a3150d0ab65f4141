// The docker provider on a real Docker engine: machines are containers of the host image with a real sshd on a
// loopback port. Create is idempotent by key, describe follows the container, tags survive, destroy is idempotent;
// findByKey and list find machines without the inventory. Each machine has its own network and cgroup namespaces:
// the demo's `base` profile with its own net.core.somaxconn changes that machine, not the host nor another machine.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { parse } from 'yaml';
import { z } from 'zod';
import { ProviderError, reservedTags, type CloudProvider } from '../activities/cloud/provider.ts';
import { runInitProfile } from '../activities/hosts/profile.ts';
import { fingerprint } from '../activities/hosts/session.ts';
import { initStepSchema } from '../config/schema.ts';
import { hostEngine, machineSpec, removeCluster, sshKeyPair, testClusterName, testDockerProvider, testHost, type TestHost } from '../testbed/hosts.ts';
import { eventually } from './harness/workflows.ts';

const cluster = testClusterName('prov');
const keys = sshKeyPair();
let provider: CloudProvider;
const hosts: TestHost[] = [];

before(async () => {
  provider = await testDockerProvider(cluster);
});

after(async () => {
  for (const h of hosts) h.session.close();
  await removeCluster((await hostEngine()).docker, cluster);
});

describe('docker provider', () => {
  test('the same idempotency key makes one machine, however often and concurrently it is asked for', async () => {
    const spec = machineSpec(cluster, 'web-1', keys.publicKey, { tags: { team: 'payments' } });
    const [a, b] = await Promise.all([provider.create(spec), provider.create(spec)]);
    const c = await provider.create(spec);
    assert.equal(a.id, b.id);
    assert.equal(a.id, c.id);
    assert.deepEqual([a.created, b.created, c.created].filter(Boolean), [true]);
    const containers = await (await hostEngine()).docker.listContainers({ all: true, filters: { label: [`${reservedTags.idempotencyKey}=${spec.idempotencyKey}`] } });
    assert.equal(containers.length, 1);
  });

  test('describe: running, on loopback, its own sshd answering with the installed key and its own host key', async () => {
    const [one, two] = await Promise.all([testHost(provider, machineSpec(cluster, 'web-1', keys.publicKey), keys.privateKey), testHost(provider, machineSpec(cluster, 'web-2', keys.publicKey), keys.privateKey)]);
    hosts.push(one, two);
    const m = await provider.describe(one.machine.id);
    assert.equal(m.state, 'running');
    // Each machine has a loopback address of its own on the host, made from its SSH port.
    assert.equal(m.address, `127.1.${m.sshPort! >> 8}.${m.sshPort! & 255}`);
    assert.notEqual(m.address, two.machine.address);
    assert.ok(m.sshPort! >= 22000 && m.sshPort! < 32000, `ssh port ${m.sshPort}`);
    assert.notEqual(m.sshPort, two.machine.sshPort);
    assert.equal(m.instanceType, 'small');
    assert.equal(m.tags[reservedTags.cluster], cluster);
    assert.equal(m.tags[reservedTags.name], 'web-1');
    assert.equal(m.tags.team, 'payments');
    assert.equal((await one.session.run('id -un')).trim(), 'root');
    // Host keys are made at first boot: no two machines share one, and the session saw the key sshd has on disk.
    assert.notEqual(one.session.hostKeyFingerprint, two.session.hostKeyFingerprint);
    const onDisk = (await one.session.run('cut -d" " -f2 /etc/ssh/ssh_host_ed25519_key.pub')).trim();
    assert.equal(one.session.hostKeyFingerprint, fingerprint(Buffer.from(onDisk, 'base64')));
  });

  test('a second machine may not take a name the cluster already has: NameClash, naming the holder and who made it', async () => {
    const spec = machineSpec(cluster, 'web-1', keys.publicKey, { idempotencyKey: 'another-request' });
    await assert.rejects(provider.create(spec), (err: ProviderError) => {
      assert.equal(err.type, 'NameClash');
      assert.equal(err.opts.holder?.id, hosts[0].machine.id);
      assert.equal(err.message, `cluster ${cluster} already has a machine named web-1 on the Docker engine: container berth-${cluster}-web-1 (${hosts[0].machine.id}, running), made by berth installation berth-tests`);
      return true;
    });
  });

  test('tags are added and overwritten, the others kept', async () => {
    const id = hosts[0].machine.id;
    await provider.tag(id, { team: 'checkout', tier: 'frontend' });
    await provider.tag(id, { 'berth-inventory': 'm-42' });
    const { tags } = await provider.describe(id);
    assert.equal(tags.team, 'checkout');
    assert.equal(tags.tier, 'frontend');
    assert.equal(tags['berth-inventory'], 'm-42');
    assert.equal(tags[reservedTags.idempotencyKey], `${cluster}/web/web-1`);
    await assert.rejects(provider.tag('no-such-container', { a: 'b' }), (err: ProviderError) => err.type === 'MachineNotFound');
  });

  test('destroy ends the machine, and again is not an error', async () => {
    const { id } = hosts[1].machine;
    await provider.destroy(id);
    assert.equal((await provider.describe(id)).state, 'terminated');
    await provider.destroy(id);
    // The name is free again: a new request makes a new machine.
    const again = await provider.create(machineSpec(cluster, 'web-2', keys.publicKey, { idempotencyKey: 'web-2-again' }));
    assert.equal(again.created, true);
    assert.notEqual(again.id, id);
  });

  test('hourly price from the rate card; an unknown instance type or image is refused', async () => {
    assert.equal(provider.hourlyPrice('large'), 0.05);
    assert.throws(
      () => provider.hourlyPrice('huge'),
      (err: ProviderError) => err.type === 'ProviderRejected' && /no price for docker huge/.test(err.message),
    );
    const noImage = await testDockerProvider(cluster, { image: 'berth-host:does-not-exist' });
    await assert.rejects(noImage.create(machineSpec(cluster, 'web-3', keys.publicKey)), (err: ProviderError) => err.type === 'ProviderRejected' && /ensureHostImage/.test(err.message));
  });

  test('findByKey finds what a key made, list every machine of the cluster; neither asks the inventory', async () => {
    const spec = machineSpec(cluster, 'web-1', keys.publicKey, { tags: { team: 'payments' } });
    const [one] = await provider.findByKey(spec.idempotencyKey);
    assert.equal(one.id, hosts[0].machine.id);
    assert.deepEqual([one.state, one.address, one.sshPort, one.instanceType], ['running', hosts[0].machine.address, hosts[0].machine.sshPort, 'small']);
    assert.equal(one.tags[reservedTags.installation], 'berth-tests');
    assert.deepEqual(await provider.findByKey('no-such-key'), []);
    const listed = await provider.list();
    assert.ok(listed.some((m) => m.id === one.id));
    assert.ok(listed.every((m) => m.tags[reservedTags.cluster] === cluster && m.createdAt !== undefined));
    // Another cluster's machines are not this one's.
    assert.deepEqual(await (await testDockerProvider(testClusterName('other'))).list(), []);
  });
});

describe('docker provider: each machine its own network and cgroup namespaces', () => {
  const ns = (path: string) => readlinkSync(path);
  // The demo's profile, as berth.example.yaml ships it, with net.core.somaxconn set to `value`.
  const base = (value: number) =>
    z
      .array(initStepSchema)
      .parse(
        (parse(readFileSync(new URL('../berth.example.yaml', import.meta.url), 'utf8')).initProfiles.base as Record<string, unknown>[]).map((step) =>
          'sysctl' in step ? { sysctl: { ...(step.sysctl as object), 'net.core.somaxconn': value } } : step,
        ),
      );
  const machines: TestHost[] = [];
  after(() => machines.forEach((m) => m.session.close()));

  test('the base profile sets net.core.somaxconn on its machine only: not on the host, not on another machine', async () => {
    const host = readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim();
    machines.push(...(await Promise.all([testHost(provider, machineSpec(cluster, 'ns-a', keys.publicKey), keys.privateKey), testHost(provider, machineSpec(cluster, 'ns-b', keys.publicKey), keys.privateKey)])));
    const [a, b] = machines;
    // Both at once, with values that conflict; each profile installs packages over the machine's own network.
    const [ranA, ranB] = await Promise.all([runInitProfile(a.session, base(8192), { machineName: 'ns-a' }), runInitProfile(b.session, base(2048), { machineName: 'ns-b' })]);
    assert.ok([...ranA, ...ranB].every((r) => r.status === 'changed' || r.status === 'ok'));
    assert.equal((await a.session.run('sysctl -n net.core.somaxconn')).trim(), '8192');
    assert.equal((await b.session.run('sysctl -n net.core.somaxconn')).trim(), '2048');
    assert.equal(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim(), host, "the host's value is its own");
  });

  test("routes and cgroups are the machine's own; sshd is reached only through its loopback port", async () => {
    const [a, b] = machines;
    const inside = async (m: TestHost, what: string) => (await m.session.run(`readlink /proc/self/ns/${what}`)).trim();
    for (const what of ['net', 'cgroup']) {
      assert.notEqual(await inside(a, what), ns(`/proc/self/ns/${what}`), `${what} namespace of the host`);
      assert.notEqual(await inside(a, what), await inside(b, what), `${what} namespace of another machine`);
    }
    // A private cgroup namespace: the machine sees its own cgroups as the roots of every hierarchy.
    const cgroups = (await a.session.run('cat /proc/self/cgroup')).trim().split('\n');
    assert.ok(
      cgroups.every((line) => line.endsWith(':/')),
      cgroups.join('\n'),
    );
    await a.session.run('ip route add 198.51.100.0/24 via 10.0.2.2');
    assert.match(await a.session.run('ip route'), /^198\.51\.100\.0\/24 via 10\.0\.2\.2/m);
    assert.doesNotMatch(await b.session.run('ip route'), /198\.51\.100\.0/);
    assert.doesNotMatch(execFileSync('ip', ['route'], { encoding: 'utf8' }), /198\.51\.100\.0/, "the host's routes are its own");
    // sshd listens inside the machine, not on the host: the machine's port 22 is not the host's.
    assert.match(await a.session.run('ss -Htln'), /:22\b/);
  });

  test("a port a machine listens on is reachable at the machine's address, not another's, and withdrawn once closed", async () => {
    const [a, b] = machines;
    // The same port on both machines, each answering with its own name (perl is in the host image; nc is not).
    const serve = (m: TestHost, name: string) =>
      m.session.run(
        `setsid perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalPort => 8099, Listen => 5, ReuseAddr => 1) or die; while ($c = $s->accept) { print $c "HTTP/1.0 200 OK\\r\\n\\r\\n$ARGV[0]\\n"; close $c }' "$1" </dev/null >/dev/null 2>&1 & echo $!`,
        { args: [name] },
      );
    const pids = [await serve(a, 'ns-a'), await serve(b, 'ns-b')].map((p) => p.trim());
    // The page, or undefined while nothing answers.
    const page = (m: TestHost) =>
      fetch(`http://${m.machine.address}:8099/`).then(
        (r) => r.text(),
        () => undefined,
      );
    assert.equal(await eventually('ns-a published', () => page(a), 15_000), 'ns-a\n');
    assert.equal(await eventually('ns-b published', () => page(b), 15_000), 'ns-b\n');
    // Not the host's own port: nothing answers there.
    await assert.rejects(fetch('http://127.0.0.1:8099/'));
    await a.session.run('kill "$1"', { args: [pids[0]] });
    await eventually('ns-a withdrawn', async () => ((await page(a)) === undefined ? true : undefined), 15_000);
    assert.equal(await page(b), 'ns-b\n');
  });
});

// `berth copy SRC DST` as a user runs it: the copy engine in one process, no Temporal, against real registries
// (plain, and Distribution v3 serving https with a certificate of its own CA); credentials by reference; exit codes for scripts.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';

const berth = fileURLToPath(new URL('../bin/berth', import.meta.url));
let source: TestRegistry;
let target: TestRegistry;
let image: BuiltImage;
const started: TestRegistry[] = [];

const host = (r: TestRegistry) => new URL(r.url).host;

/** Runs `berth copy`; resolves with its exit code and output, whatever the code. */
function copy(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(berth, ['copy', ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** Login flags for both ends: the source's password from an env var, the target's from a file. */
function logins(): { args: string[]; env: Record<string, string> } {
  const file = join(tempDir('cli-password'), 'target-password');
  writeFileSync(file, `${target.password}\n`);
  return {
    args: ['--src-user', source.username!, '--src-password-env', 'CLI_SOURCE_PASSWORD', '--dst-user', target.username!, '--dst-password-file', file],
    env: { CLI_SOURCE_PASSWORD: source.password! },
  };
}

before(async () => {
  [source, target] = await Promise.all([startedRegistry('cli-source'), startedRegistry('cli-target')]);
  image = await buildOciLayout(tempDir('cli-layout'), '1.0', [
    { os: 'linux', architecture: 'amd64', layers: [{ size: 3 << 20 }, { size: 200 << 10, gzip: true }] },
    { os: 'linux', architecture: 'arm64', layers: [{ size: 2 << 20 }] },
  ]);
  await pushWithSkopeo(image, source, 'lib/app');
});

after(async () => {
  await Promise.all([source?.stop(), target?.stop(), ...started.map((r) => r.stop())]);
});

test('copies every platform between two hosts, passwords by env var and by file; a second run sends nothing', async () => {
  const { args, env } = logins();
  const first = await copy([`${host(source)}/lib/app:1.0`, `${host(target)}/lib/app:1.0`, ...args, '--json'], env);
  assert.equal(first.code, 0, first.stderr);
  const result = JSON.parse(first.stdout);
  assert.equal(result.digest, image.digest);
  assert.equal(result.manifests, 3, 'the index and both platforms');
  assert.equal(result.bytesCopied, image.blobBytes);
  assert.equal(await digestWithSkopeo(target, 'lib/app:1.0'), image.digest);

  const again = await copy([`${host(source)}/lib/app:1.0`, `${host(target)}/lib/app:1.0`, ...args, '--json'], env);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).bytesCopied, 0, 'the target already holds the image');
});

test('registries and IDCs named in berth.yaml, with the credentials it references', async () => {
  const { file, env } = testConfig('cli-copy', '127.0.0.1:7233', [
    { registry: source, idc: 'idc-src' },
    { registry: target, idc: 'idc-dst' },
  ]);
  const res = await copy(['cli-source/lib/app:1.0', 'idc-dst/lib/copied:by-name'], { ...env, BERTH_CONFIG: file });
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, new RegExp(`idc-dst/lib/copied:by-name: ${image.digest}`));
  assert.equal(await digestWithSkopeo(target, 'lib/copied:by-name'), image.digest);
});

test('bad input, refused credentials and missing images: exit 2, 3 and 4, with a message, and nothing copied', async () => {
  const { args, env } = logins();
  const to = `${host(target)}/lib/refused:1.0`;
  const cases: [string[], Record<string, string>, number, RegExp][] = [
    [[`${host(source)}/Lib/App:1.0`, to, ...args], env, 2, /not a valid repository name/],
    [[`${host(source)}/lib/app:1.0`, to, '--src-user', 'berth'], {}, 2, /--src-user needs exactly one of --src-password-env or --src-password-file/],
    [[`${host(source)}/lib/app:1.0`, to, ...args, '--concurrency', '0'], env, 2, /--concurrency must be a positive whole number/],
    [[`${host(source)}/lib/app:1.0`, to, ...args], { CLI_SOURCE_PASSWORD: 'wrong-password' }, 3, /RegistryAuthError: .*user "berth"/],
    [[`${host(source)}/lib/none:1.0`, to, ...args], env, 4, /ImageNotFound: lib\/none:1.0 does not exist/],
    [['no-such-registry/lib/app:1.0', to], { BERTH_CONFIG: testConfig('cli-none', '127.0.0.1:7233', [{ registry: source, idc: 'idc-src' }]).file }, 4, /"no-such-registry" is neither a host nor a registry or IDC/],
  ];
  for (const [argv, extraEnv, code, message] of cases) {
    const res = await copy(argv, extraEnv);
    assert.equal(res.code, code, `${argv.join(' ')}: ${res.stderr}`);
    assert.match(res.stderr, message);
  }
  await assert.rejects(digestWithSkopeo(target, 'lib/refused:1.0'), /manifest unknown/, 'no tag was written');
});

test('over TLS: a Distribution v3 serving https with a self-signed certificate the process trusts (NODE_EXTRA_CA_CERTS)', async () => {
  const dir = tempDir('cli-tls');
  const [certificate, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', certificate], { stdio: 'ignore' });
  const secure = await startedRegistry('cli-tls', { version: 3, tls: { certificate, key }, username: target.username, password: target.password });
  started.push(secure);
  const { args, env } = logins();
  const into = `${secure.url}/lib/tls:1.0`;
  // Not a transient fault: it fails at once (the default --attempts would retry one), naming the way out.
  const untrusted = await copy([`${host(source)}/lib/app:1.0`, into, ...args], env);
  assert.equal(untrusted.code, 1, 'a certificate the process does not trust fails the copy');
  assert.match(untrusted.stderr, /RegistryRejected: .*DEPTH_ZERO_SELF_SIGNED_CERT self[- ]signed certificate.*NODE_EXTRA_CA_CERTS/i);
  assert.doesNotMatch(untrusted.stderr, /retrying/, 'not retried');

  // Written over TLS, then read back over TLS into the plain target, where skopeo checks it.
  const trusted = { ...env, NODE_EXTRA_CA_CERTS: certificate };
  const up = await copy([`${host(source)}/lib/app:1.0`, into, ...args, '--json'], trusted);
  assert.equal(up.code, 0, up.stderr);
  assert.equal(JSON.parse(up.stdout).bytesCopied, image.blobBytes, 'every blob went up over TLS');
  const down = await copy([into, `${host(target)}/lib/from-tls:1.0`, ...args, '--json'], {
    ...trusted,
    CLI_SOURCE_PASSWORD: secure.password!,
  });
  assert.equal(down.code, 0, down.stderr);
  assert.equal(JSON.parse(down.stdout).bytesCopied, image.blobBytes, 'every blob came down over TLS');
  assert.equal(await digestWithSkopeo(target, 'lib/from-tls:1.0'), image.digest);
});

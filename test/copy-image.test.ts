// The copy engine and the registry client on real registries, below Temporal: cross-repository mount, chunked
// and resumed uploads, and the copier's own streaming digest check (a corrupted download commits nothing).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { RegistryClient, UploadCheckpoint } from '../activities/registry/client.ts';
import { copyImage } from '../activities/registry/copy-image.ts';
import { RegistryError } from '../activities/registry/errors.ts';
import { registryClient, startedRegistry, tempDir, type TestRegistry } from './harness/berth.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from './harness/oci-layout.ts';
import { startRegistryProxy, type RegistryProxy } from './harness/proxy.ts';

let source: TestRegistry;
let target: TestRegistry;
let image: BuiltImage;
const clients: RegistryClient[] = [];

function clientFor(reg: TestRegistry, opts: { url?: string; chunkSize?: number } = {}): RegistryClient {
  const c = registryClient(reg, opts);
  clients.push(c);
  return c;
}

before(async () => {
  [source, target] = await Promise.all([startedRegistry('source'), startedRegistry('target')]);
  image = await buildOciLayout(tempDir('layout'), 'v2', [
    { os: 'linux', architecture: 'amd64', layers: [{ size: 5 << 20 }, { size: (3 << 20) + 17 }, { size: 100 << 10, gzip: true }] },
  ]);
  await pushWithSkopeo(image, source, 'team/base');
});

after(async () => {
  for (const c of clients) await c.close();
  await Promise.all([source?.stop(), target?.stop()]);
});

describe('copyImage', () => {
  test('within one registry, blobs are mounted from the source repository: no byte is copied', async () => {
    const client = clientFor(source);
    const result = await copyImage({ source: client, sourceRepository: 'team/base', target: client, targetRepository: 'team/derived', reference: 'v2', concurrency: 2 });
    assert.equal(result.bytesCopied, 0);
    assert.equal(result.blobsMounted, 4, 'three layers and the config');
    assert.equal(await digestWithSkopeo(source, 'team/derived:v2'), image.digest);
  });

  test('a Docker manifest list of Docker v2 schema 2 manifests arrives byte for byte', async () => {
    const index = await buildOciLayout(tempDir('docker-list'), 'multi', [
      { os: 'linux', architecture: 'amd64', layers: [{ size: 256 << 10, gzip: true }] },
      { os: 'linux', architecture: 'arm64', layers: [{ size: 128 << 10, gzip: true }] },
    ]);
    await pushWithSkopeo(index, source, 'team/docker', { dockerFormat: true });
    const result = await copyImage({ source: clientFor(source), sourceRepository: 'team/docker', target: clientFor(target), targetRepository: 'team/docker', reference: 'multi', concurrency: 2 });
    assert.equal(result.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
    assert.equal(result.manifests, 3, 'the list and both platform manifests');
    const onSource = await digestWithSkopeo(source, 'team/docker:multi');
    assert.equal(result.digest, onSource);
    assert.equal(await digestWithSkopeo(target, 'team/docker:multi'), onSource);
    const child = JSON.parse((await clientFor(target).getManifest('team/docker', 'multi')).bytes.toString()).manifests[1];
    const arm = await clientFor(target).getManifest('team/docker', child.digest);
    assert.equal(arm.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  });

  test('blobs larger than the chunk size go up in PATCH chunks and arrive intact', async () => {
    const proxy: RegistryProxy = await startRegistryProxy(target.url);
    try {
      const result = await copyImage({
        source: clientFor(source),
        sourceRepository: 'team/base',
        target: clientFor(target, { url: proxy.url, chunkSize: 1 << 20 }),
        targetRepository: 'team/chunked',
        reference: 'v2',
        concurrency: 3,
      });
      assert.equal(result.bytesCopied, image.blobBytes);
      assert.equal(proxy.uploadedBytes, image.blobBytes, 'each byte uploaded exactly once');
      assert.equal(await digestWithSkopeo(target, 'team/chunked:v2'), image.digest);
    } finally {
      await proxy.close();
    }
  });

  for (const chunkSize of [64 << 20, 1 << 20]) {
    test(`a blob corrupted on download fails with DigestMismatch and commits nothing (${chunkSize >> 20} MiB chunks)`, async () => {
      const manifest = JSON.parse((await clientFor(source).getManifest('team/base', 'v2')).bytes.toString());
      const corrupted = manifest.layers[0].digest; // 5 MiB: several chunks when chunks are 1 MiB
      const proxy = await startRegistryProxy(source.url, { corrupt: 'downloads', onlyDigest: corrupted });
      const repository = `team/corrupt-${chunkSize}`;
      const destination = clientFor(target, { chunkSize });
      try {
        const err = await copyImage({ source: clientFor(source, { url: proxy.url }), sourceRepository: 'team/base', target: destination, targetRepository: repository, reference: 'v2', concurrency: 1 }).then(
          () => assert.fail('the copy should fail'),
          (e) => e,
        );
        assert.ok(err instanceof RegistryError);
        assert.equal(err.type, 'DigestMismatch');
        assert.match(err.message, /arrived as sha256:[0-9a-f]{64}.*content corrupted/);
        assert.equal(await destination.headManifest(repository, 'v2'), null, 'no manifest under the tag');
        // One blob at a time, config first: the config landed, the corrupted layer after it did not.
        assert.equal(await destination.hasBlob(repository, manifest.config.digest), true, 'the config blob before it was uploaded');
        assert.equal(await destination.hasBlob(repository, corrupted), false, 'the corrupted blob was never committed');
      } finally {
        await proxy.close();
      }
    });
  }
});

describe('RegistryClient.uploadBlob', () => {
  test('an interrupted chunked upload continues from what the registry holds, not from zero', async () => {
    const proxy = await startRegistryProxy(target.url);
    try {
      const from = clientFor(source);
      const to = clientFor(target, { url: proxy.url, chunkSize: 1 << 20 });
      const layer = JSON.parse((await from.getManifest('team/base', 'v2')).bytes.toString()).layers[0];
      const interrupt = new AbortController();
      let checkpoint: UploadCheckpoint | undefined;
      await to
        .uploadBlob('team/resumed', layer, (offset) => from.getBlob('team/base', layer.digest, undefined, offset), {
          signal: interrupt.signal,
          onCheckpoint: (c) => {
            checkpoint = c;
            if (c.offset >= 2 << 20) interrupt.abort();
          },
        })
        .then(() => assert.fail('the upload should have been interrupted'), () => undefined);
      assert.equal(checkpoint?.offset, 2 << 20);
      assert.equal(await to.hasBlob('team/resumed', layer.digest), false, 'nothing committed yet');

      const sentBefore = proxy.uploadedBytes;
      const openedAt: number[] = [];
      await to.uploadBlob('team/resumed', layer, (offset) => (openedAt.push(offset), from.getBlob('team/base', layer.digest, undefined, offset)), { resume: checkpoint });
      assert.deepEqual(openedAt, [2 << 20], 'the source was read from the checkpoint on');
      assert.equal(proxy.uploadedBytes - sentBefore, layer.size - (2 << 20), 'only the rest was sent');
      const stored = await to.getBlob('team/resumed', layer.digest);
      const hash = createHash('sha256');
      for await (const chunk of stored) hash.update(chunk);
      assert.equal(`sha256:${hash.digest('hex')}`, layer.digest, 'the registry holds the whole blob, intact');

      // A checkpoint the registry no longer knows (that session was committed above) starts over from zero.
      const reopenedAt: number[] = [];
      await to.uploadBlob('team/resumed-again', layer, (offset) => (reopenedAt.push(offset), from.getBlob('team/base', layer.digest, undefined, offset)), { resume: checkpoint });
      assert.deepEqual(reopenedAt, [0]);
      assert.equal(await to.hasBlob('team/resumed-again', layer.digest), true);
    } finally {
      await proxy.close();
    }
  });
});

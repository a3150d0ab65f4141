// The copy engine and the registry client on real registries, below Temporal: cross-repository mount, chunked
// and resumed uploads, the copier's own streaming digest check (a corrupted download commits nothing), and which
// blobs travel (layers with urls, foreign layers, artifact manifests) on docker-registry 2.8, Distribution v3 and
// go-containerregistry's registry, checked with regctl.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { RegistryClient, UploadCheckpoint } from '../activities/registry/client.ts';
import { copyImage } from '../activities/registry/copy-image.ts';
import { RegistryError } from '../activities/registry/errors.ts';
import { MediaType } from '../activities/registry/media-types.ts';
import { registryClient, startedRegistry, tempDir, type TestRegistry } from '../testbed/berth.ts';
import { startedGgcrRegistry } from './harness/ggcr.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';
import { pushWithRegctl, referrersWithRegctl, regctl, remote } from './harness/peer-tools.ts';
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
  image = await buildOciLayout(tempDir('layout'), 'v2', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 5 << 20 }, { size: (3 << 20) + 17 }, { size: 100 << 10, gzip: true }] }]);
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
        .then(
          () => assert.fail('the upload should have been interrupted'),
          () => undefined,
        );
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

/** Whether a registry serves a blob, as regctl sees it (404: no; any other failure fails the test). */
async function hasBlobByRegctl(reg: TestRegistry, repository: string, digest: string): Promise<boolean> {
  return regctl([reg], ['blob', 'head', remote(reg, repository), digest]).then(
    () => true,
    (err: Error & { stderr?: string }) => {
      if (/not found \[http 404\]/.test(err.stderr ?? '')) return false;
      throw err;
    },
  );
}

describe('which blobs travel', () => {
  // Registries that accept layer URLs (both Distribution versions refuse every URL by default).
  const allowLayerUrls = ['^https://'];
  let withUrls: TestRegistry;
  let withUrlsV3: TestRegistry;

  before(async () => {
    [withUrls, withUrlsV3] = await Promise.all([startedRegistry('urls-2.8', { allowLayerUrls }), startedRegistry('urls-v3', { version: 3, allowLayerUrls })]);
  });

  after(async () => {
    await Promise.all([withUrls?.stop(), withUrlsV3?.stop()]);
  });

  test('a distributable layer that names urls is copied when the source has it; a non-distributable one stays at its urls', async () => {
    const image = await buildOciLayout(tempDir('urls'), '1.0', [
      {
        os: 'windows',
        architecture: 'amd64',
        layers: [{ size: 32 << 10, gzip: true, nonDistributable: true, urls: ['https://layers.example/base'] }, { size: 48 << 10, gzip: true, urls: ['https://mirror.example/app'] }, { size: 16 << 10 }],
      },
    ]);
    await pushWithRegctl(image, withUrls, 'win/app');
    const layers = JSON.parse((await clientFor(withUrls).getManifest('win/app', '1.0')).bytes.toString()).layers;
    // docker-registry 2.8 takes the manifest without the layer, Distribution v3 refuses it (MANIFEST_BLOB_UNKNOWN):
    // both must get the blob.
    for (const target of [withUrlsV3, withUrls]) {
      const result = await copyImage({ source: clientFor(withUrls), sourceRepository: 'win/app', target: clientFor(target), targetRepository: 'win/copy', reference: '1.0', concurrency: 2 });
      assert.equal(await digestWithSkopeo(target, 'win/copy:1.0'), image.digest, target.name);
      assert.equal(await hasBlobByRegctl(target, 'win/copy', layers[1].digest), true, `${target.name} serves the layer that names urls`);
      assert.equal(await hasBlobByRegctl(target, 'win/copy', layers[2].digest), true);
      assert.equal(await hasBlobByRegctl(target, 'win/copy', layers[0].digest), false, `${target.name} was not given the foreign layer`);
      assert.equal(result.blobsCopied + result.blobsMounted, 3, 'the config and the two distributable layers');
    }
  });

  test('a layer with urls that the source does not hold is left to its urls', async () => {
    const image = await buildOciLayout(tempDir('urls-only'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 8 << 10 }, { size: 24 << 10, gzip: true, urls: ['https://mirror.example/only'] }] }]);
    // Without --include-external, regctl pushes the manifest and leaves layers with urls to them.
    await regctl([withUrls], ['image', 'copy', `ocidir://${image.layoutDir}:${image.tag}`, remote(withUrls, 'lib/urls-only:1.0')]);
    const layers = JSON.parse((await clientFor(withUrls).getManifest('lib/urls-only', '1.0')).bytes.toString()).layers;
    assert.equal(await hasBlobByRegctl(withUrls, 'lib/urls-only', layers[1].digest), false, 'the source has no such blob');
    const result = await copyImage({ source: clientFor(withUrls), sourceRepository: 'lib/urls-only', target: clientFor(withUrls), targetRepository: 'lib/urls-only-copy', reference: '1.0', concurrency: 2 });
    assert.equal(result.blobsMounted, 2, 'the config and the plain layer');
    assert.equal(await digestWithSkopeo(withUrls, 'lib/urls-only-copy:1.0'), image.digest);
    assert.equal(await hasBlobByRegctl(withUrls, 'lib/urls-only-copy', layers[1].digest), false);
  });

  test('an OCI artifact manifest (the legacy one of OCI 1.1 drafts) brings its blobs, as a referrer and by tag', async () => {
    const [from, to] = await Promise.all([startedGgcrRegistry('ggcr-source'), startedGgcrRegistry('ggcr-target')]);
    try {
      const image = await buildOciLayout(tempDir('artifact-subject'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 8 << 10 }] }]);
      await pushWithSkopeo(image, from, 'lib/signed');
      const blobs = await Promise.all(
        [{ signature: 'MEUCIQ…' }, { certificate: '-----BEGIN CERTIFICATE-----' }].map(async (content) => {
          const bytes = JSON.stringify(content);
          await regctl([from], ['blob', 'put', remote(from, 'lib/signed')], bytes);
          return { mediaType: 'application/json', digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: Buffer.byteLength(bytes) };
        }),
      );
      const artifact = JSON.stringify({ mediaType: MediaType.ociArtifactManifest, artifactType: 'application/vnd.example.signature', blobs, subject: image.descriptor });
      const artifactDigest = `sha256:${createHash('sha256').update(artifact).digest('hex')}`;
      await regctl([from], ['manifest', 'put', '--content-type', MediaType.ociArtifactManifest, remote(from, 'lib/signed:signature')], artifact);
      assert.deepEqual(await referrersWithRegctl(from, 'lib/signed:1.0'), [artifactDigest], 'the source lists it through its Referrers API');

      const copy = (reference: string) => copyImage({ source: clientFor(from), sourceRepository: 'lib/signed', target: clientFor(to), targetRepository: 'lib/signed', reference, concurrency: 2 });
      assert.equal((await copy('1.0')).referrers, 1);
      assert.deepEqual(await referrersWithRegctl(to, 'lib/signed:1.0'), [artifactDigest], 'the target lists it through its Referrers API');
      for (const blob of blobs) assert.equal(await hasBlobByRegctl(to, 'lib/signed', blob.digest), true, `${blob.digest} came with its artifact`);

      const byTag = await copy('signature');
      assert.deepEqual([byTag.digest, byTag.mediaType, byTag.blobsSkipped], [artifactDigest, MediaType.ociArtifactManifest, 2]);
    } finally {
      await Promise.all([from.stop(), to.stop()]);
    }
  });
});

// Signatures, SBOMs and attestations travel with their image: copyImage on real docker-registry processes.
// docker-registry 2.8 has no Referrers API (it answers 404), so these copies find referrers through the tag schema
// that cosign and OCI 1.1 clients fall back to on such a registry. What the Referrers API answers is an image index
// of descriptors, the same document as the tag schema's `sha256-<hex>` index: its parsing is tested on the spec's
// example and on such an index as docker-registry serves it, and the target side of that path (a target without
// the API keeps API-listed referrers in the `sha256-<hex>` index) on a real registry.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Manifest, RegistryClient } from '../activities/registry/client.ts';
import { copyImage, type CopyProgress } from '../activities/registry/copy-image.ts';
import { RegistryError } from '../activities/registry/errors.ts';
import { MediaType } from '../activities/registry/media-types.ts';
import { mergeReferrersTags, parseReferrersIndex, referredDigest } from '../activities/registry/referrers.ts';
import { registryClient, startedRegistry, tempDir, type TestRegistry } from '../testbed/berth.ts';
import { buildArtifactLayout, buildOciLayout, digestWithSkopeo, manifestWithSkopeo, pushWithSkopeo, type ArtifactSpec, type BuiltImage } from '../testbed/oci-layout.ts';
import { attachWithRegctl, referrersWithRegctl } from './harness/peer-tools.ts';
import { startRegistryProxy } from './harness/proxy.ts';

let source: TestRegistry;
let target: TestRegistry;
let src: RegistryClient;
let dst: RegistryClient;
let app: BuiltImage;
let appReferrers: BuiltImage[];

const hexOf = (digest: string) => digest.slice('sha256:'.length);
const total = (images: BuiltImage[]) => images.reduce((n, i) => n + i.blobBytes, 0);

/** A signature as `cosign sign` stores it where there is no Referrers API: its simple-signing payload as a layer. */
function cosignSignature(subject: string): ArtifactSpec {
  const payload = { critical: { identity: { 'docker-reference': 'registry.example/app' }, image: { 'docker-manifest-digest': subject }, type: 'cosign container image signature' }, optional: null };
  return { layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', content: payload, annotations: { 'dev.cosignproject.cosign/signature': randomBytes(64).toString('base64') } }] };
}

/** An SBOM attestation as `cosign attest --type spdxjson` stores it: an in-toto statement in a DSSE envelope. */
function sbomAttestation(subject: string): ArtifactSpec {
  const statement = {
    _type: 'https://in-toto.io/Statement/v0.1',
    predicateType: 'https://spdx.dev/Document',
    subject: [{ name: 'registry.example/app', digest: { sha256: hexOf(subject) } }],
    predicate: { spdxVersion: 'SPDX-2.3' },
  };
  const envelope = { payloadType: 'application/vnd.in-toto+json', payload: Buffer.from(JSON.stringify(statement)).toString('base64'), signatures: [{ keyid: '', sig: randomBytes(64).toString('base64') }] };
  return { layers: [{ mediaType: 'application/vnd.dsse.envelope.v1+json', content: envelope, annotations: { predicateType: 'https://spdx.dev/Document' } }] };
}

/** Pushes a referrer of `subject` to the source under its cosign tag, `sha256-<hex>.<suffix>`. */
async function pushCosignTag(repository: string, subject: string, suffix: string, spec: ArtifactSpec): Promise<BuiltImage> {
  const artifact = buildArtifactLayout(tempDir('referrer'), `sha256-${hexOf(subject)}.${suffix}`, spec);
  await pushWithSkopeo(artifact, source, repository);
  return artifact;
}

async function assertTagsOnTarget(repository: string, artifacts: BuiltImage[]): Promise<void> {
  for (const a of artifacts) assert.equal(await digestWithSkopeo(target, `${repository}:${a.tag}`), a.digest, `${a.tag} on the target`);
}

/** Records the arguments of every call of a client method, which still does its work. */
function recordCalls<K extends 'putManifest' | 'listTags'>(client: RegistryClient, method: K): unknown[][] {
  const calls: unknown[][] = [];
  const original = (client[method] as (...args: unknown[]) => unknown).bind(client);
  client[method] = ((...args: unknown[]) => (calls.push(args), original(...args))) as RegistryClient[K];
  return calls;
}

before(async () => {
  [source, target] = await Promise.all([startedRegistry('source'), startedRegistry('target')]);
  [src, dst] = [registryClient(source), registryClient(target)];
  app = await buildOciLayout(tempDir('app'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 300 << 10, gzip: true }] }]);
  await pushWithSkopeo(app, source, 'lib/app');
  const signature = await pushCosignTag('lib/app', app.digest, 'sig', cosignSignature(app.digest));
  const attestation = await pushCosignTag('lib/app', app.digest, 'att', sbomAttestation(app.digest));
  // A signature of the attestation: a referrer of a referrer.
  appReferrers = [signature, attestation, await pushCosignTag('lib/app', attestation.digest, 'sig', cosignSignature(attestation.digest))];
});

after(async () => {
  await Promise.all([src?.close(), dst?.close()]);
  await Promise.all([source?.stop(), target?.stop()]);
});

describe('copyImage with referrers (tag schema)', () => {
  test('a signature, an SBOM attestation and its signature travel with a single-platform image; a second copy sends nothing', async () => {
    let last: CopyProgress | undefined;
    const first = await copyImage({ source: src, sourceRepository: 'lib/app', target: dst, targetRepository: 'lib/app', reference: '1.0', concurrency: 2, onProgress: (p) => (last = p) });
    assert.equal(first.referrers, 3);
    assert.equal(first.manifests, 1);
    // Progress counts the referrers' blobs (a config and a layer each) with the image's.
    assert.equal(first.bytesCopied, app.blobBytes + total(appReferrers));
    assert.equal(last?.bytesTotal, first.bytesCopied);
    assert.deepEqual([first.blobsCopied, last?.blobsTotal], [8, 8]);
    assert.equal(await digestWithSkopeo(target, 'lib/app:1.0'), app.digest);
    await assertTagsOnTarget('lib/app', appReferrers);

    const proxy = await startRegistryProxy(target.url);
    const through = registryClient(target, { url: proxy.url });
    try {
      const puts = recordCalls(through, 'putManifest');
      const again = await copyImage({ source: src, sourceRepository: 'lib/app', target: through, targetRepository: 'lib/app', reference: '1.0', concurrency: 2 });
      assert.equal(again.referrers, 3, 'found on the target');
      assert.deepEqual([again.blobsCopied, again.blobsSkipped, again.bytesCopied], [0, 8, 0]);
      assert.equal(proxy.uploadedBytes, 0, 'no blob uploaded');
      assert.deepEqual(puts, [], 'no manifest written');
    } finally {
      await through.close();
      await proxy.close();
    }
  });

  test('signatures on an index and on one of its platforms, and an SBOM, travel with a multi-platform image', async () => {
    const index = await buildOciLayout(tempDir('multi'), '2.0', [
      { os: 'linux', architecture: 'amd64', layers: [{ size: 64 << 10, gzip: true }] },
      { os: 'linux', architecture: 'arm64', layers: [{ size: 32 << 10, gzip: true }] },
    ]);
    await pushWithSkopeo(index, source, 'lib/multi');
    const arm64 = index.manifests[1].digest;
    const referrers = [
      await pushCosignTag('lib/multi', index.digest, 'sig', cosignSignature(index.digest)),
      await pushCosignTag('lib/multi', index.digest, 'sbom', { layers: [{ mediaType: 'text/spdx+json', content: { spdxVersion: 'SPDX-2.3', name: 'multi' } }] }),
      await pushCosignTag('lib/multi', arm64, 'sig', cosignSignature(arm64)),
    ];
    const listings = recordCalls(src, 'listTags');
    const result = await copyImage({ source: src, sourceRepository: 'lib/multi', target: dst, targetRepository: 'lib/multi', reference: '2.0', concurrency: 2 });
    assert.equal(listings.length, 1, 'one tag listing for the three manifest digests and the referrers');
    assert.equal(result.manifests, 3);
    assert.equal(result.referrers, 3);
    assert.equal(result.bytesCopied, index.blobBytes + total(referrers));
    assert.equal(await digestWithSkopeo(target, 'lib/multi:2.0'), index.digest);
    await assertTagsOnTarget('lib/multi', referrers);
  });

  test('an OCI 1.1 referrer pushed by digest and listed in the sha256-<hex> index travels with the index', async () => {
    const image = await buildOciLayout(tempDir('oci'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 16 << 10 }] }]);
    await pushWithSkopeo(image, source, 'lib/oci');
    const sbom = buildArtifactLayout(tempDir('sbom'), 'sbom', {
      layers: [{ mediaType: 'application/spdx+json', content: { spdxVersion: 'SPDX-2.3', name: 'oci' } }],
      refers: { artifactType: 'application/spdx+json', subject: image.descriptor },
    });
    await pushWithSkopeo(sbom, source, 'lib/oci', { byDigest: true });
    // Pushed with berth's client: skopeo 1.9 re-serializes an index without the artifactType it does not know, so
    // it refuses to push this one digest for digest.
    const index = ociIndex([sbom.descriptor]);
    await src.putManifest('lib/oci', `sha256-${hexOf(image.digest)}`, index);
    const sbomSignature = await pushCosignTag('lib/oci', sbom.digest, 'sig', cosignSignature(sbom.digest));

    const result = await copyImage({ source: src, sourceRepository: 'lib/oci', target: dst, targetRepository: 'lib/oci', reference: '1.0', concurrency: 2 });
    assert.equal(result.referrers, 2, 'the SBOM and its signature');
    assert.equal(await digestWithSkopeo(target, `lib/oci@${sbom.digest}`), sbom.digest);
    assert.equal(await digestWithSkopeo(target, `lib/oci:sha256-${hexOf(image.digest)}`), index.digest);
    await assertTagsOnTarget('lib/oci', [sbomSignature]);
    // The index as docker-registry serves it is what the Referrers API answers for the image.
    assert.deepEqual(parseReferrersIndex(await manifestWithSkopeo(target, `lib/oci:sha256-${hexOf(image.digest)}`), 'index'), [sbom.descriptor]);
  });

  test("a re-copy merges the target's sha256-<hex> index with the source's: a scan report attached at the target stays", async () => {
    const image = await buildOciLayout(tempDir('scanned'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 8 << 10 }] }]);
    await pushWithSkopeo(image, source, 'lib/scanned');
    // Attached as regctl users do: on a registry without the Referrers API, regctl keeps the sha256-<hex> index.
    const sbom = await attachWithRegctl(source, 'lib/scanned:1.0', 'application/spdx+json', { spdxVersion: 'SPDX-2.3' });
    const copy = () => copyImage({ source: src, sourceRepository: 'lib/scanned', target: dst, targetRepository: 'lib/scanned', reference: '1.0', concurrency: 2 });
    await copy();
    assert.deepEqual(await referrersWithRegctl(target, 'lib/scanned:1.0'), [sbom]);

    // The target's scanner attaches its report there; the source gets a signature meanwhile.
    const report = await attachWithRegctl(target, 'lib/scanned:1.0', 'application/vnd.example.scan-report+json', { vulnerabilities: [] });
    const signature = await attachWithRegctl(source, 'lib/scanned:1.0', 'application/vnd.example.signature+json', { signed: image.digest });
    assert.equal((await copy()).referrers, 2);
    assert.deepEqual(await referrersWithRegctl(target, 'lib/scanned:1.0'), [sbom, report, signature].sort(), 'the source referrers and the target-only report');
    // Nothing new on the source: the target's index is left as it is.
    const index = `lib/scanned:sha256-${hexOf(image.digest)}`;
    const before = await digestWithSkopeo(target, index);
    await copy();
    assert.equal(await digestWithSkopeo(target, index), before);
    assert.deepEqual(await referrersWithRegctl(target, 'lib/scanned:1.0'), [sbom, report, signature].sort());
  });

  test('an image without referrers copies with referrers: 0', async () => {
    const plain = await buildOciLayout(tempDir('plain'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 8 << 10 }] }]);
    await pushWithSkopeo(plain, source, 'lib/plain');
    const result = await copyImage({ source: src, sourceRepository: 'lib/plain', target: dst, targetRepository: 'lib/plain', reference: '1.0', concurrency: 2 });
    assert.equal(result.referrers, 0);
    assert.equal(result.bytesCopied, plain.blobBytes);
  });

  test('a referrer that cannot be copied fails the copy, and the image is not tagged without it', async () => {
    const signature = JSON.parse((await src.getManifest('lib/app', appReferrers[0].digest)).bytes.toString());
    const proxy = await startRegistryProxy(source.url, { corrupt: 'downloads', onlyDigest: signature.layers[0].digest });
    const corrupting = registryClient(source, { url: proxy.url });
    try {
      const err = await copyImage({ source: corrupting, sourceRepository: 'lib/app', target: dst, targetRepository: 'lib/unsigned', reference: '1.0', concurrency: 2 }).then(
        () => assert.fail('the copy should fail'),
        (e) => e,
      );
      assert.ok(err instanceof RegistryError);
      assert.equal(err.type, 'DigestMismatch');
      assert.match(err.message, new RegExp(`^copying the referrers of lib/app@${app.digest} to target: .*content corrupted`));
      assert.equal(await dst.headManifest('lib/unsigned', '1.0'), null, 'no tag');
    } finally {
      await corrupting.close();
      await proxy.close();
    }
  });
});

describe('Referrers API', () => {
  test('a target without it keeps the referrers the source listed in the sha256-<hex> index, adding to what it lists', async () => {
    // What copyImage does after copying such referrers by digest (docker-registry cannot be that source).
    const image = await buildOciLayout(tempDir('api'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 4 << 10 }] }]);
    await pushWithSkopeo(image, target, 'lib/api');
    const [sbom, signature] = await Promise.all(
      (['application/spdx+json', 'application/vnd.cncf.notary.signature'] as const).map(async (artifactType) => {
        const artifact = buildArtifactLayout(tempDir('api-referrer'), 'referrer', { layers: [{ mediaType: artifactType, content: { of: image.digest } }], refers: { artifactType, subject: image.descriptor } });
        await pushWithSkopeo(artifact, target, 'lib/api', { byDigest: true });
        return artifact.descriptor;
      }),
    );
    const tag = `lib/api:sha256-${hexOf(image.digest)}`;
    const listedOnTarget = async () => parseReferrersIndex(await manifestWithSkopeo(target, tag), tag);

    const listedByApi = (descriptors: (typeof sbom)[]) => mergeReferrersTags(dst, 'lib/api', new Map(), new Map([[image.digest, descriptors]]));
    await listedByApi([sbom]);
    assert.deepEqual(await listedOnTarget(), [sbom]);
    await listedByApi([signature, sbom]);
    assert.deepEqual(await listedOnTarget(), [sbom, signature]);
    const digest = await digestWithSkopeo(target, tag);
    await listedByApi([signature]);
    assert.equal(await digestWithSkopeo(target, tag), digest, 'nothing new: the index is left as it is');
  });

  test('its answer, an image index of descriptors, is parsed with artifactType and annotations', () => {
    // The example answer to GET /v2/<name>/referrers/<digest> in the OCI distribution spec 1.1 (digests spelled out).
    const answer = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          size: 1234,
          digest: `sha256:${'a1'.repeat(32)}`,
          artifactType: 'application/vnd.example.sbom.v1',
          annotations: { 'org.opencontainers.image.created': '2022-01-01T14:42:55Z', 'org.example.sbom.format': 'json' },
        },
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          size: 1234,
          digest: `sha256:${'a2'.repeat(32)}`,
          artifactType: 'application/vnd.example.signature.v1',
          annotations: { 'org.opencontainers.image.created': '2022-01-01T07:21:33Z', 'org.example.signature.fingerprint': 'abcd' },
        },
      ],
    };
    assert.deepEqual(parseReferrersIndex(Buffer.from(JSON.stringify(answer)), 'referrers'), answer.manifests);
  });

  test('anything but an index of well-formed descriptors is refused, naming the request', () => {
    const what = `list referrers of lib/app@sha256:${'0'.repeat(64)} on source`;
    for (const body of ['<html>404 page not found</html>', '{"manifests":[{"mediaType":"x","digest":"sha256:../../blobs","size":1}]}', '{"errors":[]}']) {
      assert.throws(
        () => parseReferrersIndex(Buffer.from(body), what),
        (err) => err instanceof RegistryError && err.type === 'RegistryRejected' && err.message.startsWith(what),
      );
    }
  });

  test('tag schema tags name the digest their content refers to', () => {
    const hex = 'c0ffee'.padEnd(64, '0');
    assert.equal(referredDigest(`sha256-${hex}`), `sha256:${hex}`);
    for (const suffix of ['sig', 'att', 'sbom']) assert.equal(referredDigest(`sha256-${hex}.${suffix}`), `sha256:${hex}`);
    for (const tag of ['1.0', `sha256-${hex.slice(1)}.sig`, `sha512-${hex}`, `sha256-${hex}-extra`]) assert.equal(referredDigest(tag), undefined, tag);
  });
});

/** An OCI image index of descriptors, as a manifest to push. */
function ociIndex(manifests: BuiltImage['descriptor'][]): Manifest {
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }));
  return { mediaType: MediaType.ociIndex, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, bytes };
}

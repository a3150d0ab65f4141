// berth's copier held to other registry implementations: Debian's docker-registry (Distribution 2.8), CNCF
// Distribution v3 and go-containerregistry's registry with the OCI 1.1 Referrers API, each way round. What arrives
// is checked with crane (`crane validate` downloads and hashes every blob) and regctl, independently of berth.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { asTemporalFailure } from '../activities/failures.ts';
import type { RegistryClient } from '../activities/registry/client.ts';
import { copyImage } from '../activities/registry/copy-image.ts';
import { RegistryError } from '../activities/registry/errors.ts';
import { registryClient, startedRegistry, tempDir, type TestRegistry } from '../testbed/berth.ts';
import { startedGgcrRegistry } from './harness/ggcr.ts';
import { buildArtifactLayout, buildOciLayout, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';
import { crane, pushWithRegctl, referrersWithRegctl, remote } from './harness/peer-tools.ts';

let registries: TestRegistry[];
let multi: BuiltImage;
let docker: BuiltImage;
const clients: RegistryClient[] = [];

function clientFor(reg: TestRegistry): RegistryClient {
  const c = registryClient(reg);
  clients.push(c);
  return c;
}

function copy(from: TestRegistry, to: TestRegistry, repository: string, reference: string, targetRepository = repository) {
  return copyImage({ source: clientFor(from), sourceRepository: repository, target: clientFor(to), targetRepository, reference, concurrency: 2 });
}

before(async () => {
  registries = await Promise.all([startedRegistry('distribution-2.8'), startedRegistry('distribution-v3', { version: 3 }), startedGgcrRegistry('ggcr')]);
  // gzip layers only: `crane validate` gunzips every layer, and refuses an uncompressed one wherever it is.
  multi = await buildOciLayout(tempDir('interop-multi'), '1.0', [
    {
      os: 'linux',
      architecture: 'amd64',
      layers: [
        { size: 96 << 10, gzip: true },
        { size: 32 << 10, gzip: true },
      ],
    },
    { os: 'linux', architecture: 'arm64', layers: [{ size: 64 << 10, gzip: true }] },
  ]);
  docker = await buildOciLayout(tempDir('interop-docker'), 'docker', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 48 << 10, gzip: true }] }]);
  await Promise.all(registries.flatMap((r) => [pushWithSkopeo(multi, r, 'interop/multi'), pushWithSkopeo(docker, r, 'interop/docker', { dockerFormat: true })]));
});

after(async () => {
  for (const c of clients) await c.close();
  await Promise.all(registries?.map((r) => r.stop()) ?? []);
});

describe('copies between registry implementations', () => {
  test('an OCI index and a Docker v2 image copy between every pair, digest for digest, every blob intact', async () => {
    for (const from of registries) {
      for (const to of registries.filter((r) => r !== from)) {
        for (const [repository, tag] of [
          ['interop/multi', '1.0'],
          ['interop/docker', 'docker'],
        ]) {
          const target = `copies/${from.name}/${repository.split('/')[1]}`;
          const result = await copy(from, to, repository, tag, target);
          const pair = `${repository} ${from.name} -> ${to.name}`;
          assert.equal((await crane([from], ['digest', remote(from, `${repository}:${tag}`)])).trim(), result.digest, pair);
          assert.equal((await crane([to], ['digest', remote(to, `${target}:${tag}`)])).trim(), result.digest, pair);
          await crane([to], ['validate', '--remote', remote(to, `${target}:${tag}`)]);
        }
      }
    }
  });

  test('referrers listed only by the Referrers API reach every target: by its API where it has one, else in the sha256-<hex> index', async () => {
    const [, , ggcr] = registries;
    const other = await startedGgcrRegistry('ggcr-target');
    try {
      const image = await buildOciLayout(tempDir('interop-subject'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 16 << 10 }] }]);
      await pushWithSkopeo(image, ggcr, 'interop/signed');
      // Pushed by digest with a subject and no tag: only the Referrers API finds them.
      const sbom = buildArtifactLayout(tempDir('interop-sbom'), 'sbom', {
        layers: [{ mediaType: 'application/spdx+json', content: { spdxVersion: 'SPDX-2.3' } }],
        refers: { artifactType: 'application/spdx+json', subject: image.descriptor },
      });
      const signature = buildArtifactLayout(tempDir('interop-sig'), 'sig', {
        layers: [{ mediaType: 'application/vnd.example.signature', content: { of: sbom.digest } }],
        refers: { artifactType: 'application/vnd.example.signature', subject: sbom.descriptor },
      });
      for (const artifact of [sbom, signature]) await pushWithSkopeo(artifact, ggcr, 'interop/signed', { byDigest: true });
      assert.deepEqual(await referrersWithRegctl(ggcr, 'interop/signed:1.0'), [sbom.digest]);

      for (const to of [other, ...registries.filter((r) => r !== ggcr)]) {
        const result = await copy(ggcr, to, 'interop/signed', '1.0');
        assert.equal(result.referrers, 2, to.name);
        assert.deepEqual(await referrersWithRegctl(to, 'interop/signed:1.0'), [sbom.digest], `${to.name} lists the SBOM`);
        assert.deepEqual(await referrersWithRegctl(to, `interop/signed@${sbom.digest}`), [signature.digest], `${to.name} lists the SBOM's signature`);
      }
    } finally {
      await other.stop();
    }
  });
});

test('a registry with the Referrers API that does not know a repository yet still has the API: it lists nothing', async () => {
  const [v2, , ggcr] = registries;
  const digest = `sha256:${'0'.repeat(64)}`;
  // go-containerregistry answers 404 NAME_UNKNOWN there; docker-registry 2.8, without the API, a plain 404.
  assert.deepEqual(await clientFor(ggcr).getReferrers('interop/not-yet', digest), []);
  assert.equal(await clientFor(v2).getReferrers('interop/multi', digest), null);
});

describe('clear errors', () => {
  test('Distribution v3 answering 500 to a layer URL it does not allow: one attempt, every error with its detail', async () => {
    const [, strictV3] = registries;
    const withUrls = await startedRegistry('urls-source', { allowLayerUrls: ['^https://'] });
    try {
      const image = await buildOciLayout(tempDir('interop-foreign'), '1.0', [
        { os: 'windows', architecture: 'amd64', layers: [{ size: 16 << 10, gzip: true, nonDistributable: true, urls: ['https://layers.example/base'] }, { size: 8 << 10 }] },
      ]);
      await pushWithRegctl(image, withUrls, 'win/base');
      const foreign = JSON.parse((await clientFor(withUrls).getManifest('win/base', '1.0')).bytes.toString()).layers[0].digest;
      const err = await copy(withUrls, strictV3, 'win/base', '1.0').then(
        () => assert.fail('Distribution v3 refuses layer URLs unless allowed'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof RegistryError, String(err));
      assert.deepEqual([err.type, err.retryable, err.opts.status, err.opts.code], ['RegistryRejected', false, 500, 'MANIFEST_BLOB_UNKNOWN']);
      assert.equal(err.message, `put manifest win/base:1.0 on distribution-v3: HTTP 500 UNKNOWN: unknown error; UNKNOWN: unknown error (invalid URL on layer); MANIFEST_BLOB_UNKNOWN: blob unknown to registry (${foreign})`);
      // The activity fails without a retry: Temporal is told it is not retryable.
      await assert.rejects(
        asTemporalFailure(() => Promise.reject(err)),
        (failure: unknown) => failure instanceof ApplicationFailure && failure.nonRetryable && failure.type === 'RegistryRejected',
      );
    } finally {
      await withUrls.stop();
    }
  });

  test('a digest is named repo@sha256:…', async () => {
    const [v2, v3] = registries;
    const missing = `sha256:${'0'.repeat(64)}`;
    await assert.rejects(copy(v2, v3, 'interop/multi', missing), { name: 'ImageNotFound', message: `interop/multi@${missing} does not exist on distribution-2.8` });
  });
});

// What berth believes of a registry's answers: names it lists (a hostile catalog must not reach into another
// team's repositories), the token realm it names (credentials go only to its own host or a trusted one), and the
// upload Location it hands out (another host gets no Authorization header). Real docker-registry processes; the
// hostile registry and the upload host are small HTTP servers of this file (127.0.0.2 is loopback too).
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Readable } from 'node:stream';
import { WorkflowFailedError } from '@temporalio/client';
import { basicAuthorization } from '../activities/registry/auth.ts';
import { RegistryClient } from '../activities/registry/client.ts';
import { registryClients } from '../activities/registry/clients.ts';
import { RegistryError } from '../activities/registry/errors.ts';
import { syncPlan } from '../planning/sync-plan.ts';
import { startWorkers } from '../workers/run.ts';
import { syncRegistries } from '../workflows/sync-registries.ts';
import { startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo } from '../testbed/oci-layout.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';
import { createTokenService } from './harness/token-issuer.ts';

interface Seen {
  method: string;
  path: string;
  authorization?: string;
}

interface Listening {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

const cleanups: (() => Promise<unknown>)[] = [];

/** An HTTP server on `host` that writes down every request before `handle` answers it. */
async function listening(host: string, handle: (req: IncomingMessage, res: import('node:http').ServerResponse) => void): Promise<Listening> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ method: req.method!, path: req.url!, authorization: req.headers.authorization });
    handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as { port: number };
  const l = { url: `http://${host}:${port}`, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  cleanups.push(l.close);
  return l;
}

/**
 * A pass-through to a registry. `uploadsAt` names another host:port for the registry to put in the Location of new
 * upload sessions (it builds them from the Host header); `authorization` replaces the caller's, as an upload
 * service that has its own access to the storage would.
 */
function forwardTo(registry: TestRegistry, opts: { uploadsAt?: string; authorization?: string } = {}) {
  const target = new URL(registry.url);
  return (req: IncomingMessage, res: import('node:http').ServerResponse) => {
    const startsUpload = req.method === 'POST' && /\/blobs\/uploads\/$/.test(new URL(req.url!, 'http://x').pathname);
    const headers = { ...req.headers, ...(startsUpload && opts.uploadsAt ? { host: opts.uploadsAt } : {}), ...(opts.authorization ? { authorization: opts.authorization } : {}) };
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
}

let temporal: TestTemporal;

before(async () => {
  temporal = await connectTestTemporal();
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await temporal?.close();
});

describe('names a registry lists', () => {
  test('a hostile catalog listing team-a/../team-b/app cannot make a team-a rule read or delete in team-b', async () => {
    const target = await startedRegistry('trust-target');
    cleanups.push(target.stop);
    const teamB = await buildOciLayout(tempDir('team-b'), '1.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 8 << 10 }] }]);
    await pushWithSkopeo(teamB, target, 'team-b/app');
    const targetSide = await listening('127.0.0.1', forwardTo(target));

    // A source registry that lists a name walking out of team-a, and has no tags anywhere.
    const hostile = await listening('127.0.0.1', (req, res) => {
      const path = new URL(req.url!, 'http://x').pathname;
      res.setHeader('content-type', 'application/json');
      if (path === '/v2/') return res.end('{}');
      if (path === '/v2/_catalog') return res.end(JSON.stringify({ repositories: ['team-a/app', 'team-a/../team-b/app'] }));
      const tags = /^\/v2\/(.+)\/tags\/list$/.exec(path);
      if (tags) return res.end(JSON.stringify({ name: tags[1], tags: [] }));
      res.statusCode = 404;
      res.end(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'no such repository' }] }));
    });
    const hostileRegistry = { name: 'hostile', url: hostile.url, port: Number(new URL(hostile.url).port), dataDir: '', start: async () => {}, stop: async () => {} };

    const { config } = testConfig(
      'trust-names',
      temporal.address,
      [
        { registry: hostileRegistry, idc: 'idc-a' },
        { registry: target, idc: 'idc-b', parent: 'idc-a', url: targetSide.url },
      ],
      {},
      {
        projects: [
          { name: 'team-a', repositories: ['team-a/**'] },
          { name: 'team-b', repositories: ['team-b/**'] },
        ],
        syncRules: [{ name: 'team-a-mirror', project: 'team-a', source: 'idc-a', repositories: { include: ['team-a/**'] }, schedule: { every: '1h' }, paused: true, deleteExtra: true }],
      },
    );
    const workers = await startWorkers(config);
    cleanups.push(() => workers.shutdown());

    const run = temporal.client.workflow.execute(syncRegistries, { taskQueue: config.taskQueues.main, workflowId: `trust-names-${Date.now()}`, args: [syncPlan(config, config.syncRules[0])] });
    const err = await run.then(
      () => assert.fail('the sync must not accept the listing'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    // The run says what it refused and why, in the drift report it fails with.
    const report = JSON.stringify((err.cause as { details?: unknown[] }).details);
    assert.match(report, /listed \\"team-a\/\.\.\/team-b\/app\\", which is not a valid repository name: refused/);

    assert.equal(await digestWithSkopeo(target, 'team-b/app:1.0'), teamB.digest, "team-b's image is still there");
    const withinTeamA = (path: string) => path === '/v2/' || path.startsWith('/v2/_catalog?') || path.startsWith('/v2/team-a/app/');
    const outside = [...hostile.seen, ...targetSide.seen].filter((r) => !withinTeamA(r.path));
    assert.deepEqual(outside, [], 'no request outside team-a reached either registry');
  });
});

describe("where a registry's credentials go", () => {
  test("a token realm on another host gets them only when berth.yaml trusts it; one on the registry's host (another port) always", async () => {
    const password = randomBytes(12).toString('hex');
    const tokens = createTokenService(tempDir('realm'), { robot: password });
    const elsewhere = await listening('127.0.0.2', (req, res) => tokens.handle(req, res));
    const sameHost = await listening('127.0.0.1', (req, res) => tokens.handle(req, res));
    const auth = (realm: string) => ({ token: { realm: `${realm}/token`, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle } });
    const remote = await startedRegistry('realm-remote', { auth: auth(elsewhere.url), username: 'robot', password });
    const local = await startedRegistry('realm-local', { auth: auth(sameHost.url), username: 'robot', password });
    cleanups.push(remote.stop, local.stop);

    const configured = (id: string, trustedTokenRealms?: string[]) =>
      registryClients(
        testConfig(id, temporal.address, [
          { registry: remote, idc: 'idc-a', trustedTokenRealms },
          { registry: local, idc: 'idc-b' },
        ]).config,
      );

    const untrusted = configured('realm-untrusted');
    await assert.rejects(untrusted('realm-remote').ping(), (e: RegistryError) => {
      assert.equal(e.type, 'RegistryAuthError');
      assert.equal(e.retryable, false);
      assert.match(e.message, new RegExp(`realm-remote names a token service on another host than 127\\.0\\.0\\.1, not among its trustedTokenRealms \\(${elsewhere.url}/token\\)`));
      return true;
    });
    assert.deepEqual(elsewhere.seen, [], 'the token service on another host heard nothing');
    await untrusted('realm-local').ping();
    assert.ok(sameHost.seen.length > 0 && sameHost.seen.every((r) => r.authorization?.startsWith('Basic ')), "the realm on the registry's own host got the credentials");

    const trusted = configured('realm-trusted', [elsewhere.url]);
    await trusted('realm-remote').ping();
    assert.ok(elsewhere.seen.length > 0, 'the trusted token service was asked');
    assert.ok(tokens.issued >= 2);
  });

  test('an upload Location on another host gets no Authorization header', async () => {
    const registry = await startedRegistry('location');
    cleanups.push(registry.stop);
    // Uploads continue on 127.0.0.2, a service that has its own access to the registry (as storage gateways do).
    const uploads = await listening('127.0.0.2', (req, res) => forwardTo(registry, { authorization: basicAuthorization({ username: registry.username!, password: registry.password! }) })(req, res));
    const front = await listening('127.0.0.1', forwardTo(registry, { uploadsAt: new URL(uploads.url).host }));

    const client = new RegistryClient({ name: 'location', baseUrl: front.url, credentials: { username: registry.username!, password: registry.password! }, chunkSize: 256 << 10 });
    cleanups.push(() => client.close());
    const blob = randomBytes(600 << 10);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    await client.uploadBlob('team-a/app', { digest, size: blob.length }, async (offset) => Readable.from([blob.subarray(offset)]));

    assert.ok(
      front.seen.some((r) => r.method === 'POST' && r.authorization?.startsWith('Basic ')),
      'the registry itself got the credentials',
    );
    assert.ok(uploads.seen.length >= 3, `the chunks and the commit went to the upload host (${uploads.seen.length} requests)`);
    assert.deepEqual(
      uploads.seen.filter((r) => r.authorization),
      [],
      'none of them carried an Authorization header',
    );
    const direct = new RegistryClient({ name: 'location', baseUrl: registry.url, credentials: { username: registry.username!, password: registry.password! } });
    cleanups.push(() => direct.close());
    assert.equal(await direct.hasBlob('team-a/app', digest), true);
  });
});

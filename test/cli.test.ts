// The berth CLI against a running stack: a real API on a port, workers, registries; the CLI as a user runs it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startWorkers, type WorkerSet } from '../workers/run.ts';
import { testApi, type TestApi } from '../testbed/api.ts';
import { startedRegistry, tempDir, testConfig, type TestRegistry } from '../testbed/berth.ts';
import { runCli } from './harness/cli.ts';
import { buildOciLayout, digestWithSkopeo, pushWithSkopeo, type BuiltImage } from '../testbed/oci-layout.ts';
import { connectTestTemporal, type TestTemporal } from './harness/temporal.ts';

let temporal: TestTemporal;
let api: TestApi;
let workers: WorkerSet;
let url: string;
let image: BuiltImage;
const regs: TestRegistry[] = [];

/** Runs the CLI; resolves with its exit code and output, whatever the code. */
const cli = (args: string[], env: Record<string, string> = {}) => runCli({ url, token: api.adminToken }, args, env);

before(async () => {
  temporal = await connectTestTemporal();
  regs.push(await startedRegistry('cli-a'), await startedRegistry('cli-b'));
  image = await buildOciLayout(tempDir('layout'), '3.0', [{ os: 'linux', architecture: 'amd64', layers: [{ size: 256 << 10 }] }]);
  await pushWithSkopeo(image, regs[0], 'tools/cli');
  const { config } = testConfig('cli', temporal.address, [
    { registry: regs[0], idc: 'idc-a' },
    { registry: regs[1], idc: 'idc-b' },
  ]);
  workers = await startWorkers(config);
  api = await testApi(config, temporal.client);
  url = await api.listen();
});

after(async () => {
  await api?.close();
  await workers?.shutdown();
  for (const r of regs) await r.stop();
  await temporal?.close();
});

test('replicate --watch --json: waits for the workflow, prints its final status as JSON, exits 0', async () => {
  const res = await cli(['replicate', 'tools/cli:3.0', '--from', 'idc-a', '--to', 'idc-b', '--watch', '--json']);
  assert.equal(res.code, 0, res.stderr);
  const status = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
  assert.equal(status.status, 'COMPLETED');
  assert.equal(status.result['cli-b'].digest, image.digest);
  assert.equal(await digestWithSkopeo(regs[1], 'tools/cli:3.0'), image.digest);

  const human = await cli(['status', status.workflowId]);
  assert.equal(human.code, 0);
  assert.match(human.stdout, /COMPLETED\ncli-b\s+done\s+\[#{24}\] 100%/);
});

test('exit codes scripts can rely on: 2 bad input, 3 not allowed, 4 not found, 5 unreachable, 1 failed', async () => {
  const bad = await cli(['replicate', 'Not An Image', '--from', 'idc-a', '--to', 'idc-b']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /image: /);
  assert.equal((await cli(['replicate', 'tools/cli:3.0', '--from', 'idc-a'])).code, 2, '--to missing');
  const denied = await cli(['status', 'x'], { BERTH_TOKEN: 'berth_wrong' });
  assert.equal(denied.code, 3);
  assert.match(denied.stderr, /HTTP 401: unknown token/);
  assert.equal((await cli(['status', 'no-such-workflow'])).code, 4);
  assert.equal((await cli(['status', 'x'], { BERTH_API: 'http://127.0.0.1:1' })).code, 5);
  const failed = await cli(['replicate', 'tools/missing:1.0', '--from', 'idc-a', '--to', 'idc-b', '--watch']);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /ReplicationFailed: tools\/missing:1\.0 cannot be read on cli-a/);
});

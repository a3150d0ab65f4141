// docker-compose.yml and the Dockerfile cannot run here (no image can be pulled), so they are checked against the
// code: every berth service runs a role the image's entrypoint has, with flags and a berth.yaml that role accepts
// (its own --check), one worker per IDC of the compose's berth.yaml, each with its registries' secrets; and
// docker-compose itself accepts the file (Debian's docker-compose, installed by .ci/run).
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { idcTaskQueue, loadConfig, type BerthConfig } from '../config/load.ts';
import { berthSearchAttributes } from '../contracts/search-attributes.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const run = promisify(execFile);

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  secrets?: string[];
  restart?: string;
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
}

const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service>; secrets: Record<string, { file: string }> };
const berthServices = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);
const configMount = '/etc/berth/berth.yaml';
let config: BerthConfig;
/** What each berth service's command says it would run, from the role's --check. */
const checked: Record<string, string> = {};

/** The host file a service mounts at `target`. */
function mounted(service: Service, target: string): string | undefined {
  const volume = service.volumes?.find((v) => v.split(':')[1] === target);
  return volume && join(root, volume.split(':')[0]);
}

before(async () => {
  const configFile = mounted(compose.services['berth-api'], configMount);
  assert.ok(configFile, `berth-api mounts a berth.yaml at ${configMount}`);
  config = loadConfig(configFile);
  // The file alone decides: no TEMPORAL_ADDRESS of the developer's shell.
  const env: NodeJS.ProcessEnv = { ...process.env, BERTH_CONFIG: configFile };
  delete env.TEMPORAL_ADDRESS;
  delete env.TEMPORAL_NAMESPACE;
  await Promise.all(
    berthServices.map(async ([name, service]) => {
      assert.equal(mounted(service, configMount), configFile, `${name} reads the same berth.yaml`);
      const { stdout } = await run('sh', [join(root, 'deploy/entrypoint.sh'), ...service.command!, '--check'], { env });
      checked[name] = stdout.trim();
    }),
  );
});

describe('docker-compose.yml and the Dockerfile', () => {
  test('docker-compose accepts the file', (t) => {
    if (!process.env.PATH?.split(':').some((dir) => existsSync(join(dir, 'docker-compose')))) return t.skip('docker-compose is not installed (.ci/run installs it)');
    execFileSync('docker-compose', ['-f', join(root, 'docker-compose.yml'), 'config', '--quiet'], { stdio: 'pipe' });
  });

  test('every berth service runs a role of the image entrypoint, whose script exists', () => {
    const roles = new Map([...read('deploy/entrypoint.sh').matchAll(/^\s+([a-z]+)\) exec node --import tsx (\S+)/gm)].map((m) => [m[1], m[2]]));
    assert.deepEqual([...roles.keys()].sort(), ['api', 'worker']);
    for (const script of roles.values()) assert.ok(existsSync(join(root, script)), `${script} exists`);
    assert.ok(berthServices.length >= 3, 'the api, the main worker and IDC workers');
    for (const [name, service] of berthServices) assert.ok(roles.has(service.command![0]), `${name}: role ${service.command![0]}`);
  });

  test('the API and the main worker share the inventory in PostgreSQL, with its password; the schema job creates its database', () => {
    const db = config.inventory.postgres;
    assert.ok(db, 'deploy/berth.yaml keeps the inventory in PostgreSQL');
    assert.equal(db.host, 'postgresql');
    assert.equal(dirname(db.passwordFile!), '/run/secrets');
    for (const name of ['berth-api', 'berth-worker']) assert.ok(compose.services[name].secrets?.includes(basename(db.passwordFile!)), `${name} gets ${basename(db.passwordFile!)}`);
    assert.match(read('deploy/temporal/setup-schema.sh'), new RegExp(`^sql --db ${db.database} create\\b`, 'm'));
  });

  test('payloads are encrypted: every berth service has the key, and the UI decrypts through the API', () => {
    const keyFiles = config.encryption!.keys.map((k) => k.key.file!);
    for (const [name, service] of berthServices) for (const file of keyFiles) assert.ok(service.secrets?.includes(basename(file)), `${name} gets ${basename(file)}`);
    const ui = compose.services['temporal-ui'].environment!;
    assert.equal(ui.TEMPORAL_CODEC_ENDPOINT, `http://localhost:${config.api.port}/codec`);
    assert.equal(new URL(config.temporal.uiUrl).port, '8233');
  });

  test('the API and the main worker serve what they should; one worker per IDC of berth.yaml, each on its own queue', () => {
    assert.match(checked['berth-api'], new RegExp(`^berth api would listen on http://0.0.0.0:${config.api.port}`));
    assert.equal(checked['berth-worker'], `berth worker would poll ${config.taskQueues.main} on ${config.temporal.address}`);
    const idcWorkers = berthServices.map(([name]) => name).filter((name) => name.startsWith('berth-worker-idc-'));
    assert.deepEqual(idcWorkers.sort(), config.idcs.map((d) => `berth-worker-idc-${d.name}`).sort());
    for (const idc of config.idcs) {
      const name = `berth-worker-idc-${idc.name}`;
      assert.equal(checked[name], `berth worker would poll ${idcTaskQueue(config, idc.name)} on ${config.temporal.address}`, name);
    }
  });

  test("each IDC worker has the secret files of its IDC's registries and of its parent's (copies read their source)", () => {
    for (const idc of config.idcs) {
      const service = compose.services[`berth-worker-idc-${idc.name}`];
      for (const r of config.registries.filter((reg) => reg.idc === idc.name || reg.idc === idc.parent)) {
        const file = r.credentials?.passwordFile;
        assert.ok(file && dirname(file) === '/run/secrets', `${r.name}: a compose secret (/run/secrets/...)`);
        assert.ok(service.secrets?.includes(basename(file)), `${idc.name}'s worker gets ${basename(file)}`);
        assert.ok(compose.secrets[basename(file)]?.file, `${basename(file)} is a file secret`);
      }
    }
  });

  test('long-running services restart and have healthchecks; workers get longer to stop than their grace period', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      if (service.restart === 'on-failure') continue; // one-shot set-up jobs
      assert.equal(service.restart, 'unless-stopped', name);
      assert.ok(service.healthcheck?.test.length, `${name} has a healthcheck`);
    }
    for (const [name, service] of berthServices.filter(([n]) => n.startsWith('berth-worker'))) {
      const stopSeconds = Number(service.stop_grace_period?.replace(/s$/, ''));
      assert.ok(stopSeconds > config.workers.shutdownGraceSeconds, `${name}: stop_grace_period ${service.stop_grace_period} > ${config.workers.shutdownGraceSeconds} s`);
      assert.ok(service.healthcheck!.test.join(' ').includes(`:${config.metrics.port}/healthz`), `${name} checks its own /healthz`);
    }
  });

  test("the set-up job registers berth's search attributes", () => {
    const registered = [...read('deploy/temporal/setup-namespace.sh').matchAll(/\b(Berth\w+)=(\w+)/g)].map((m) => `${m[1]}=${m[2]}`);
    const cliType = { KEYWORD: 'Keyword', KEYWORD_LIST: 'KeywordList', TEXT: 'Text', INT: 'Int', DOUBLE: 'Double', BOOL: 'Bool', DATETIME: 'Datetime' } as const;
    assert.deepEqual(registered.sort(), berthSearchAttributes.map((k) => `${k.name}=${cliType[k.type]}`).sort());
  });

  test('the image bundles the workflows where workers look for them, runs as a user, and enters through the roles', () => {
    const dockerfile = read('Dockerfile');
    const bundle = dockerfile.match(/^RUN node --import tsx workers\/bundle\.ts (\S+)$/m)?.[1];
    assert.ok(bundle, 'the build stage bundles the workflows');
    assert.match(dockerfile, new RegExp(`BERTH_WORKFLOW_BUNDLE=/app/${bundle}\\b`));
    assert.match(dockerfile, new RegExp(`BERTH_CONFIG=${configMount}\\b`));
    const user = [...dockerfile.matchAll(/^USER (\S+)$/gm)].at(-1)?.[1];
    assert.ok(user && user !== 'root' && user !== '0', `runs as ${user}`);
    assert.match(dockerfile, /^ENTRYPOINT \["\/bin\/sh", "\/app\/deploy\/entrypoint\.sh"\]$/m);
    const ignored = read('.dockerignore').split('\n');
    for (const path of ['.berth', 'deploy/secrets', 'node_modules', '.git']) assert.ok(ignored.includes(path), `.dockerignore keeps ${path} out`);
  });
});

import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig, parseConfig } from '../config/load.ts';
import { exampleConfigPath } from '../config/path.ts';

function problems(yaml: string): string[] {
  try {
    parseConfig(yaml, 'berth.yaml', '/etc/berth');
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  return assert.fail('the config should be rejected');
}

const base = `
idcs: [{ name: idc-a }, { name: idc-b, parent: idc-a }]
registries:
  - { name: reg-a, idc: idc-a, url: "http://127.0.0.1:5001/", credentials: { username: u, passwordFile: secrets/a } }
  - { name: reg-b, idc: idc-b, url: "https://registry.example:5000", credentials: { username: u, passwordEnv: REG_B_PASSWORD } }
`;

describe('berth.yaml', () => {
  test('the example config loads, with defaults filled in', () => {
    const config = loadConfig(exampleConfigPath);
    assert.deepEqual(
      config.idcs.map((i) => [i.name, i.parent]),
      [
        ['idc-a', undefined],
        ['idc-b', 'idc-a'],
        ['idc-c', 'idc-b'],
      ],
    );
    assert.deepEqual(
      config.registries.map((r) => r.url),
      ['http://127.0.0.1:5001', 'http://127.0.0.1:5002', 'http://127.0.0.1:5003'],
    );
    assert.equal(config.taskQueues.main, 'berth-main');
    assert.deepEqual(
      config.syncRules.map((r) => [r.name, r.repositories.include, r.bidirectional]),
      [
        ['mirror-library', ['library/**'], false],
        ['hub-both-ways', ['**'], true],
      ],
    );
    // Relative endpoint paths resolve against the config file, like password files.
    assert.equal(config.haGroups[0].endpoint.nginx.pidFile, join(dirname(exampleConfigPath), '.berth/nginx/nginx.pid'));
    assert.equal(config.haGroups[0].probe.failures, 3);
  });

  test('relative password files resolve against the config file, URLs lose trailing slashes', () => {
    const config = parseConfig(base, 'berth.yaml', '/etc/berth');
    assert.equal(config.registries[0].credentials?.passwordFile, '/etc/berth/secrets/a');
    assert.equal(config.registries[0].url, 'http://127.0.0.1:5001');
    assert.equal(config.api.port, 8080);
  });

  test('an inline password is refused, with its YAML path', () => {
    assert.deepEqual(problems(base.replace('passwordEnv: REG_B_PASSWORD', 'password: hunter2')), ['registries[1].credentials.password: inline secrets are not accepted: use passwordEnv (an env var name) or passwordFile (a path)']);
  });

  test('a password inside a registry URL is refused too', () => {
    assert.deepEqual(problems(base.replace('"http://127.0.0.1:5001/"', '"https://robot:hunter2@registry.example"')), ['registries[0].url: credentials in the URL are not accepted: use credentials (passwordEnv or passwordFile)']);
  });

  test('each problem names its path', () => {
    assert.deepEqual(problems(base.replace('"http://127.0.0.1:5001/"', 'ftp://x').replace('parent: idc-a', 'parent: 7')), [
      'idcs[1].parent: Invalid input: expected string, received number',
      'registries[0].url: must be an http:// or https:// URL',
    ]);
    assert.deepEqual(problems('idcs: []\nregistries: []\nextra: 1'), ['idcs: at least one IDC is needed', 'registries: at least one registry is needed', '(top level): Unrecognized key: "extra"']);
    assert.deepEqual(problems(base.replace('passwordFile: secrets/a', 'passwordFile: secrets/a, passwordEnv: A')), ['registries[0].credentials: set exactly one of passwordEnv or passwordFile']);
    assert.deepEqual(problems(`${base.replace('passwordEnv: REG_B_PASSWORD }', 'passwordEnv: REG_B_PASSWORD }, trustedTokenRealms: [auth.example] ')}api: { unauthenticatedRequestsPerMinute: 0 }\n`), [
      'api.unauthenticatedRequestsPerMinute: Too small: expected number to be >=1',
      'registries[1].trustedTokenRealms[0]: must be an http:// or https:// URL',
    ]);
  });

  test('the IDC tree and registry references are checked', () => {
    assert.deepEqual(problems(base.replace('parent: idc-a', 'parent: idc-z').replace('idc: idc-b,', 'idc: idc-q,')), ['idcs[1].parent: unknown IDC "idc-z"', 'registries[1].idc: unknown IDC "idc-q"']);
    assert.deepEqual(problems(base.replace('{ name: idc-a }', '{ name: idc-a, parent: idc-b }')), ['idcs[0].parent: IDC parents form a cycle through "idc-a"', 'idcs[1].parent: IDC parents form a cycle through "idc-b"']);
    assert.deepEqual(problems(base.replace('name: reg-b', 'name: reg-a')), ['registries[1].name: name "reg-a" is already used by another IDC or registry']);
  });

  test('YAML syntax errors are reported with their line', () => {
    const [problem] = problems('idcs: [ { name: a ]\n');
    assert.match(problem, /line 1/);
  });

  test('sync rules: unknown registries, bad schedules and duplicate names are refused with their YAML paths', () => {
    const rule = (extra: string, every = '10m') => `${base}syncRules:\n  - { name: r1, source: idc-a, schedule: { every: ${every} }${extra} }\n`;
    assert.deepEqual(problems(rule(', targets: [reg-b, idc-x]')), ['syncRules[0].targets[1]: unknown IDC or registry "idc-x"']);
    assert.deepEqual(problems(rule('', '10 minutes')), ['syncRules[0].schedule.every: must be a number and a unit: 30s, 10m, 6h, 1d']);
    assert.deepEqual(problems(rule(', mode: rsync')), ['syncRules[0].mode: Invalid option: expected one of "direct"|"harbor"']);
    assert.deepEqual(problems(`${rule('')}  - { name: r1, source: reg-b, schedule: { cron: "0 3 * * *" } }\n`), ['syncRules[1].name: duplicate sync rule "r1"']);
  });

  test('sync settings that would let a history or payload grow past its bounds are refused with their YAML paths', () => {
    assert.deepEqual(problems(`${base}sync: { repositoriesPerBatch: 501, eventsPerRun: 9000 }\n`), ['sync.repositoriesPerBatch: Too big: expected number to be <=500', 'sync.eventsPerRun: Too big: expected number to be <=8000']);
  });

  test('HA groups: unknown registries, a pair in one IDC, unknown vantage points, a bad endpoint queue are refused with their YAML paths', () => {
    const nginx = '{ upstreamFile: u.conf, pidFile: n.pid }';
    const group = (fields: string, queue = '') => `${base}haGroups:\n  - { name: hub, endpoint: { url: "http://127.0.0.1:5000", ${queue}nginx: ${nginx} }, ${fields} }\n`;
    assert.deepEqual(problems(group('primary: reg-a, secondary: reg-b', 'taskQueue: "nginx host", ')), ['haGroups[0].endpoint.taskQueue: letters, digits, ".", "_" and "-" only']);
    assert.deepEqual(problems(group('primary: reg-a, secondary: reg-x')), ['haGroups[0].secondary: unknown registry "reg-x"']);
    assert.deepEqual(problems(group('primary: reg-a, secondary: reg-a')), ["haGroups[0].secondary: reg-a is in the primary's IDC (idc-a): an HA pair spans two IDCs"]);
    assert.deepEqual(problems(group('primary: reg-a, secondary: reg-b, probe: { every: 2 seconds, vantagePoints: [idc-a, idc-z] }')), [
      'haGroups[0].probe.every: must be a number and a unit: 500ms, 2s, 1m',
      'haGroups[0].probe.vantagePoints[1]: unknown IDC "idc-z"',
    ]);
  });
  test("init steps and providers: an error inside a step's or a provider's own schema names its YAML path", () => {
    const steps = (yaml: string) => `${base}initProfiles:\n  base:\n${yaml}`;
    assert.deepEqual(problems(steps('    - hostname: {}\n    - chrony: { servers: [] }\n    - files: [{ path: /etc/motd, content: hi, mode: "9" }]\n')), [
      'initProfiles.base[1].chrony.servers: Too small: expected array to have >=1 items',
      'initProfiles.base[2].files[0].mode: must be an octal mode like "0644" or "2750"',
    ]);
    assert.deepEqual(problems(steps('    - ntp: { servers: [a] }\n')), [
      'initProfiles.base[0]: Unrecognized key: "ntp"',
      'initProfiles.base[0]: each init step is an object of one key, one of: hostname, chrony, sysctl, docker, authorized-keys, packages, script, files',
    ]);
    const cluster = (provider: string) =>
      `${base}rateCard: { aws: { small: 1 } }\ninitProfiles: { base: [{ hostname: {} }] }\nclusters:\n  - { name: c, idc: idc-a, provider: ${provider}, ssh: { privateKey: { env: K } }, pools: [{ name: p, instanceType: small, initProfile: base }] }\n`;
    assert.deepEqual(problems(cluster('{ kind: aws, imageId: ami-1, accessKeyId: { env: A }, secretAccessKey: { env: S, file: s } }')), [
      'clusters[0].provider.region: Invalid input: expected string, received undefined',
      'clusters[0].provider.secretAccessKey: set exactly one of env or file for the AWS secret access key',
    ]);
    assert.match(problems(cluster('{ kind: openstack }'))[0], /^clusters\[0\]\.provider\.kind: /);
  });
});

describe('berth.yaml services', () => {
  const withServices = (services: string) => `${base}
projects: [{ name: shop, repositories: ["shop/**"], clusters: [web] }, { name: other, repositories: ["other/**"], clusters: [] }]
rateCard: { docker: { small: 0.01 } }
initProfiles: { base: [{ hostname: {} }] }
clusters:
  - name: web
    idc: idc-b
    provider: { kind: docker }
    ssh: { privateKey: { file: key } }
    pools: [{ name: front, instanceType: small, initProfile: base }]
services:
${services}`;

  test('a service loads with its defaults; its deploy pulls from the cluster IDC registry and distributes from the master', async () => {
    const { deployServiceInput } = await import('../planning/service-plan.ts');
    const config = parseConfig(
      withServices(`  - { name: shop-web, project: shop, image: shop/web, cluster: web, pool: front, replicas: 2, ports: [80], env: { MODE: blue, TOKEN: { env: SHOP_TOKEN } }, health: { http: { path: /healthz, port: 80 } } }`),
      'berth.yaml',
    );
    const [s] = config.services;
    assert.deepEqual([s.maxUnavailable, s.maxSurge, s.approval, s.health.interval, s.health.retries], [1, 0, false, '1s', 10]);
    const input = deployServiceInput(config, s, '1.2', 'alice');
    assert.deepEqual(input.registry, { registry: 'reg-b', idc: 'idc-b', taskQueue: 'berth-idc-idc-b' });
    assert.equal(input.distribution?.idc, 'idc-a');
    assert.deepEqual(input.service.env, { MODE: { value: 'blue' }, TOKEN: { env: 'SHOP_TOKEN' } });
    assert.deepEqual(input.service.health, { http: { path: '/healthz', port: 80 }, intervalMs: 1000, timeoutMs: 2000, retries: 10 });
  });

  test('an image outside the project, a cluster or pool it lacks, an inline secret and a bad health check are each named', () => {
    assert.deepEqual(
      problems(
        withServices(`  - { name: a, project: shop, image: other/web, cluster: web, pool: back, health: { command: ["true"] } }
  - { name: b, project: other, image: other/web, cluster: web, pool: front, env: { TOKEN: { secret: x } }, health: { http: { path: /, port: 81 }, command: ["true"] }, ports: [80] }
  - { name: c, project: shop, image: shop/c, cluster: web, pool: front, maxUnavailable: 0, health: { http: { path: /, port: 80 } } }`),
      ),
      [
        'services[1].env.TOKEN: a string, or one of { value }, { env } (an env var name) or { file } (a path): secrets by reference',
        'services[1].health: set exactly one of http or command',
        'services[2].maxUnavailable: maxUnavailable and maxSurge cannot both be 0: nothing could be replaced',
        'services[2].health.http.port: the health check port must be one of ports',
      ],
    );
    assert.deepEqual(
      problems(
        withServices(`  - { name: a, project: shop, image: other/web, cluster: web, pool: back, health: { command: ["true"] } }
  - { name: b, project: other, image: other/web, cluster: web, pool: front, health: { command: ["true"] } }`),
      ),
      ["services[0].image: other/web is not in project shop's repositories (shop/**)", 'services[0].pool: cluster web has no pool "back"', "services[1].cluster: cluster web is not one of project other's clusters"],
    );
  });
});

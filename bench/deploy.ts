// `npm run bench -- deploy`: a rolling update of a service of 2 replicas on each of 3 machines from version A to
// version B, berth against ansible-playbook with the community.docker collection doing the same steps
// (bench/ansible/rolling-update.yml). The machines are a pool of the docker provider, each with an engine of its own
// at an address of its own, as test/deploy-service.test.ts stands them up; the image is the busybox httpd of
// testbed/service-image.ts, in the cluster IDC's registry.
//
// berth: `bin/berth deploy web <B> --watch` timed as a whole process from exec to exit (CPU by GNU time), against
// the API, a worker process and Temporal (dev server) as production runs them: it resolves the digest in the
// cluster IDC's registry, then replaces the machines one batch at a time (maxUnavailable 1, maxSurge 0: one machine
// per batch, on it each replica stopped, started anew and health-checked in turn).
// ansible: the same batching (`serial: 1`), over SSH to each machine's own address, driving its engine there: a
// login and a pull by digest, then per replica: stop (10 s grace) and remove the old container, start the new one,
// poll its /healthz from the controller with berth's health settings (500 ms apart, 1 s timeout, 10 retries).
//
// Before each timed run both tools' containers are brought to A (untimed) and B's image removed from every machine:
// each run pulls B for real. BENCH_RUNS (3) interleaved rounds, each starting with the other tool; prints medians
// and berth/ansible (goal <= 0.7); writes bench/results/deploy.json. The machines, containers, registries, Temporal
// and temp dirs go at the end, failed or not.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { freePort } from '../embedded/processes.ts';
import { startTemporalDevServer } from '../embedded/temporal-dev-server.ts';
import { testApi } from '../testbed/api.ts';
import { registryClient, startedRegistry, tempDir, testConfig } from '../testbed/berth.ts';
import { hostEngine, removeCluster, sshKeyPair } from '../testbed/hosts.ts';
import { pushServiceImage, serviceImage, servicePort, serviceClusterConfig } from '../testbed/service-image.ts';
import { ensureAnsible } from './ansible-install.ts';
import { berthProcess, machineWatch, median, seconds, timeProcess, writeResult, type ProcessTiming, runBench } from './lib.ts';

const run = promisify(execFile);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const [from, to] = ['va', 'vb'];
const replicas = 2;
const machineCount = 3;
const health = { interval: '500ms', timeout: '1s', retries: 10 };
const berthBin = fileURLToPath(new URL('../bin/berth', import.meta.url));
const ansiblePackage = '12.3.0';
const ansibleDir = fileURLToPath(new URL('./ansible/', import.meta.url));
const tools = ['berth', 'ansible'] as const;
type Tool = (typeof tools)[number];
/** How each tool's containers are told apart on a machine: their name's prefix. */
const prefixes: Record<Tool, string> = { berth: 'berth-web-', ansible: 'ansible-web-' };

const cleanups: (() => Promise<unknown>)[] = [];

interface Machine {
  id: string;
  name: string;
  address: string;
  sshPort: number;
}

async function main() {
  const watch = machineWatch();
  const started = performance.now();
  const engine = await hostEngine();
  const cluster = `bench-deploy-${process.pid}`;
  cleanups.push(() => removeCluster(engine.docker, cluster));
  const [master, below] = [await startedRegistry('deploy-master'), await startedRegistry('deploy-below')];
  cleanups.push(master.stop, below.stop);
  const dir = tempDir('bench-deploy');
  const temporal = await startTemporalDevServer({ port: await freePort(), headless: true, dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'temporal.log') });
  cleanups.push(() => temporal.stop());
  const connection = await Connection.connect({ address: temporal.address });
  cleanups.push(() => connection.close());
  const client = new Client({ connection });

  const keys = sshKeyPair('berth-bench');
  const keyFile = join(dir, 'id_ed25519');
  writeFileSync(keyFile, keys.privateKey, { mode: 0o600 });
  process.env.BERTH_BENCH_DEPLOY_KEY = keys.privateKey;
  const registryAddress = `10.0.2.2:${below.port}`;
  const { config, file, env } = testConfig(
    'bench-deploy',
    temporal.address,
    [
      { registry: master, idc: 'idc-a' },
      { registry: below, idc: 'idc-b', parent: 'idc-a' },
    ],
    {},
    {
      ...(await serviceClusterConfig(cluster, 'idc-b', 'BERTH_BENCH_DEPLOY_KEY', below.port, machineCount)),
      projects: [{ name: 'shop', repositories: ['shop/**'], clusters: [cluster] }],
      services: [{ name: 'web', project: 'shop', image: 'shop/web', cluster, pool: 'front', replicas, ports: [servicePort], maxUnavailable: 1, health: { http: { path: '/healthz', port: servicePort }, ...health } }],
    },
  );
  const worker = await berthProcess('worker', 'workers/main.ts', [], 'berth worker polling', { ...process.env, ...env, BERTH_CONFIG: file, BERTH_LOG_LEVEL: 'ERROR' });
  cleanups.push(() => worker.stop());
  const api = await testApi(config, client);
  cleanups.push(api.close);
  const apiUrl = await api.listen();
  const token = await api.userWith('bench', { shop: 'developer' });
  const berthEnv = { ...process.env, BERTH_API: apiUrl, BERTH_TOKEN: token };

  // Both versions in the master registry only: berth's first deploy of each distributes it to the IDC below.
  const masterClient = registryClient(master);
  const digests: Record<string, string> = {};
  for (const version of [from, to]) digests[version] = await pushServiceImage(masterClient, await serviceImage(version), 'shop/web');

  console.log(`${machineCount} machines with an engine each...`);
  const scaled = await api.inject({ method: 'POST', url: `/v1/pools/${cluster}/front/scale`, payload: { desired: machineCount } });
  if (scaled.statusCode !== 202) throw new Error(`scale: ${scaled.statusCode} ${scaled.body}`);
  const scale = await client.workflow.getHandle(scaled.json().workflowId).result();
  if (scale.failed.length > 0) throw new Error(`scale failed: ${JSON.stringify(scale.failed)}`);
  const machines: Machine[] = (await api.inject({ url: `/v1/machines?cluster=${cluster}&state=ready` })).json().machines;
  if (machines.length !== machineCount) throw new Error(`${machines.length} machines ready, not ${machineCount}`);
  const berthDeploy = (version: string) => timeProcess(berthBin, ['deploy', 'web', version, '--watch'], berthEnv);
  const ansible = await ensureAnsible('ansible', ansiblePackage);
  const inventory = join(dir, 'inventory.ini');
  writeFileSync(inventory, `[machines]\n${machines.map((m) => `${m.name} ansible_host=${m.address} ansible_port=${m.sshPort} ansible_user=root ansible_ssh_private_key_file=${keyFile}`).join('\n')}\n`);
  const ansibleEnv = { ...process.env, ANSIBLE_CONFIG: join(ansibleDir, 'ansible.cfg'), ANSIBLE_HOME: join(dir, 'ansible-home'), ANSIBLE_LOCAL_TEMP: join(dir, 'ansible-tmp'), LC_ALL: 'C.UTF-8' };
  const ansibleDeploy = (version: string) => {
    const vars = join(dir, `vars-${version}.json`);
    writeFileSync(vars, JSON.stringify({ registry: registryAddress, repository: 'shop/web', version, digest: digests[version], registry_user: below.username, registry_password: below.password }), { mode: 0o600 });
    return timeProcess(join(ansible.bin, 'ansible-playbook'), ['-i', inventory, '-e', `@${vars}`, join(ansibleDir, 'rolling-update.yml')], ansibleEnv);
  };
  const deployWith: Record<Tool, (version: string) => Promise<ProcessTiming>> = { berth: berthDeploy, ansible: ansibleDeploy };
  const onMachine = (m: Machine, command: string) =>
    run('ssh', ['-i', keyFile, '-p', String(m.sshPort), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', `root@${m.address}`, command]);

  /** What every machine runs, by tool: the version label of each of its replicas, in replica order. */
  async function running(): Promise<Record<Tool, string[]>> {
    const seen: Record<Tool, string[]> = { berth: [], ansible: [] };
    for (const m of machines) {
      const { stdout } = await onMachine(m, `docker ps --format '{{.Label "berth.service.version"}}{{.Label "bench.version"}} {{.Label "berth.service.replica"}}{{.Label "bench.replica"}} {{.Names}}'`);
      for (const line of stdout
        .trim()
        .split('\n')
        .sort((a, b) => a.split(' ')[1].localeCompare(b.split(' ')[1]))) {
        const [version, , name] = line.split(' ');
        seen[tools.find((t) => name.startsWith(prefixes[t]))!].push(version);
      }
    }
    return seen;
  }
  /** Untimed: both tools on A, B's image gone from every machine. */
  async function reset(): Promise<void> {
    for (const t of tools) await deployWith[t](from);
    const ref = `${registryAddress}/shop/web@${digests[to]}`;
    for (const m of machines) await onMachine(m, `docker image rm ${ref} >/dev/null 2>&1 || true`);
    const seen = await running();
    for (const t of tools)
      if (
        seen[t].join() !==
        Array(machineCount * replicas)
          .fill(from)
          .join()
      )
        throw new Error(`${t} is not on ${from} everywhere: ${seen[t].join()}`);
  }

  // Untimed: what community.docker needs on a managed node (berth's machines need nothing but their engine).
  console.log('python3 and python3-requests on every machine, for ansible...');
  await Promise.all(machines.map((m) => onMachine(m, 'export DEBIAN_FRONTEND=noninteractive; apt-get -q update >/dev/null && apt-get install -y -q --no-install-recommends python3 python3-requests >/dev/null')));
  // Untimed: the first deploy of each version distributes it to the IDC below; berth's CLI bundle is built.
  console.log('warm-up: each version deployed once by each tool (untimed)...');
  for (const version of [from, to]) for (const t of tools) await deployWith[t](version);

  const timings: Record<Tool, ProcessTiming[]> = { berth: [], ansible: [] };
  for (let i = 0; i < runs; i++) {
    const order: Tool[] = i % 2 === 0 ? [...tools] : [...tools].reverse();
    for (const tool of order) {
      await reset();
      const t = await deployWith[tool](to);
      const seen = await running();
      if (
        seen[tool].join() !==
        Array(machineCount * replicas)
          .fill(to)
          .join()
      )
        throw new Error(`after ${tool}'s update: ${seen[tool].join()}`);
      timings[tool].push(t);
      console.log(`round ${i + 1}/${runs} ${tool.padEnd(6)} ${seconds(t.wallMs, 1)}  cpu ${t.cpuS.toFixed(2)} s`);
    }
  }

  const medians = Object.fromEntries(tools.map((t) => [t, { wallMs: median(timings[t].map((x) => x.wallMs)), cpuS: median(timings[t].map((x) => x.cpuS)), maxRssMB: median(timings[t].map((x) => x.maxRssMB)) }])) as Record<
    Tool,
    { wallMs: number; cpuS: number; maxRssMB: number }
  >;
  const ratio = medians.berth.wallMs / medians.ansible.wallMs;
  const result = {
    machines: machineCount,
    replicas,
    rollout: { maxUnavailable: 1, maxSurge: 0, health },
    runs,
    how: {
      berth: 'bin/berth deploy web vb --watch against the API, a worker process and the Temporal dev server',
      ansible: `ansible ${ansiblePackage} (community.docker), bench/ansible/rolling-update.yml, serial 1, pipelining, ControlPersist`,
    },
    medians,
    berthOverAnsible: ratio,
    goal: { berthOverAnsibleAtMost: 0.7, met: ratio <= 0.7 },
    timings: Object.fromEntries(tools.map((t) => [t, timings[t].map(({ wallMs, cpuS, maxRssMB }) => ({ wallMs, cpuS, maxRssMB }))])),
    machine: watch(),
    benchMs: performance.now() - started,
  };
  writeResult('deploy', result);
  console.log(`
rolling update  ${machineCount} machines x ${replicas} replicas, ${from} -> ${to}, maxUnavailable 1; ${runs} rounds
medians         wall      cpu
${tools.map((t) => `${t.padEnd(14)}${seconds(medians[t].wallMs, 1).padStart(8)}${medians[t].cpuS.toFixed(2).padStart(8)} s`).join('\n')}
berth/ansible   ${ratio.toFixed(3)} (goal <= 0.7)
written to bench/results/deploy.json`);
}

runBench(main, cleanups);

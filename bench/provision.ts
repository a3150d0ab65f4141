// `npm run bench -- provision`: initializes BENCH_HOSTS (default 20) hosts with berth's init profile `base`
// (hostname, chrony, sysctl net.core.somaxconn=4096, packages [curl]), berth against ansible-playbook with forks=20
// running the same tasks (bench/ansible/provision.yml), and one host alone with each. Hosts are containers of the
// docker provider (real sshd), fresh for every measurement so that each tool starts from the same state: apt's
// lists absent, nothing installed. Only the initialization is timed, never the containers' creation. BENCH_RUNS
// (default 3) interleaved rounds; prints medians, berth/ansible, 20 hosts / 1 host, what the CPU and the mirror
// did meanwhile; writes bench/results/provision.json.
//
// berth runs the initMachine activity's own code (createHostActivities(config).initMachine: key by reference,
// SSH with the pinned host key, runInitProfile) for all hosts concurrently in this process, each under
// @temporalio/testing's MockActivityEnvironment: no Temporal server or worker polling is in the timing.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import type Docker from 'dockerode';
import { stringify } from 'yaml';
import { createHostActivities } from '../activities/hosts/index.ts';
import type { StepResult } from '../activities/hosts/profile.ts';
import { connectWhenReady } from '../activities/hosts/session.ts';
import { parseConfig } from '../config/load.ts';
import { tempDir } from '../testbed/berth.ts';
import { hostEngine, machineSpec, removeCluster, sshKeyPair, testDockerProvider } from '../testbed/hosts.ts';
import { ensureAnsible } from './ansible-install.ts';
import { median, writeResult, runBench } from './lib.ts';

const run = promisify(execFile);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const manyHosts = Number(process.env.BENCH_HOSTS ?? 20);
const ansibleVersion = '2.19.14';
const forks = 20;
const profile = [{ hostname: {} }, { chrony: { servers: ['127.0.0.1'] } }, { sysctl: { 'net.core.somaxconn': 4096 } }, { packages: ['curl'] }];
const ansibleDir = fileURLToPath(new URL('./ansible/', import.meta.url));

type Tool = 'berth' | 'ansible';
type Size = 'many' | 'one';
type Phase = `${Tool}-${Size}`;
const phases: Phase[] = ['berth-many', 'ansible-many', 'berth-one', 'ansible-one'];

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const cleanups: (() => Promise<unknown>)[] = [];

interface Host {
  name: string;
  containerId: string;
  address: string;
  sshPort: number;
  hostKeyFingerprint: string;
}

/** What one timed run cost the machine: every core's busy time, the controller's own CPU, bytes received. */
interface Usage {
  ms: number;
  /** Busy core-seconds of the whole machine (/proc/stat): the hosts' apt and dpkg, sshd, the controller. */
  busyCoreS: number;
  /** CPU seconds of the tool's own processes: berth's node process; ansible-playbook, its forks and ssh clients. */
  controllerCpuS: number;
  /** CPU seconds spent inside the hosts' containers (their cgroups): sshd, the commands, apt, dpkg, ansible's modules. */
  hostsCpuS: number;
  /** Bytes the machine received from outside (/proc/net/dev, loopback excluded): the Debian mirror's answers. */
  rxMB: number;
}

interface Measurement {
  first: Usage;
  /** The same run again on the initialized hosts: nothing to change. */
  again: Usage;
}

function cpuJiffies(): { busy: number; total: number } {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const n = fields.map(Number);
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - n[3] - n[4], total };
}

function rxBytes(): number {
  return readFileSync('/proc/net/dev', 'utf8')
    .split('\n')
    .slice(2)
    .filter((l) => l.includes(':') && l.split(':')[0].trim() !== 'lo')
    .reduce((sum, l) => sum + Number(l.split(':')[1].trim().split(/\s+/)[0]), 0);
}

/** CPU seconds a container has used so far, from its cgroup (v1 cpuacct, else v2 cpu.stat); NaN when neither is there. */
function containerCpuS(id: string): number {
  try {
    return Number(readFileSync(`/sys/fs/cgroup/cpuacct/docker/${id}/cpuacct.usage`, 'utf8')) / 1e9;
  } catch {
    try {
      const usec = /^usage_usec (\d+)$/m.exec(readFileSync(`/sys/fs/cgroup/docker/${id}/cpu.stat`, 'utf8'))?.[1];
      return usec === undefined ? NaN : Number(usec) / 1e6;
    } catch {
      return NaN;
    }
  }
}

const hostsCpu = (hosts: Host[]) => hosts.reduce((sum, h) => sum + containerCpuS(h.containerId), 0);

/** Times `fn` on `hosts`, with what the whole machine did meanwhile; `fn` returns its own controller CPU seconds. */
async function measure(hosts: Host[], fn: () => Promise<number>): Promise<Usage> {
  const [cpu0, rx0, hosts0, t0] = [cpuJiffies(), rxBytes(), hostsCpu(hosts), performance.now()];
  const controllerCpuS = await fn();
  const [cpu1, rx1, hosts1, t1] = [cpuJiffies(), rxBytes(), hostsCpu(hosts), performance.now()];
  return { ms: t1 - t0, busyCoreS: (cpu1.busy - cpu0.busy) / 100, controllerCpuS, hostsCpuS: hosts1 - hosts0, rxMB: (rx1 - rx0) / 1e6 };
}

/**
 * The host image plus python3 and python3-apt, which ansible needs on every managed node (Debian's cloud images
 * ship python3; ansible's apt module needs python3-apt). Both tools get this image, so both start from the same
 * hosts. apt's lists are removed and their directory dated 1970: both tools see them missing and refresh them.
 */
async function benchImage(docker: Docker, base: string): Promise<{ tag: string; built: boolean }> {
  const tag = `${base}-python3`;
  if (
    await docker
      .getImage(tag)
      .inspect()
      .then(
        () => true,
        () => false,
      )
  )
    return { tag, built: false };
  const script = `set -e
export DEBIAN_FRONTEND=noninteractive
apt-get -q update >/dev/null
apt-get install -y -q --no-install-recommends python3 python3-apt >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/* /var/lib/apt/periodic/update-success-stamp
mkdir -p /var/lib/apt/lists/partial
touch -d @0 /var/lib/apt/lists`;
  const container = await docker.createContainer({ Image: base, Entrypoint: ['sh', '-c', script], HostConfig: { NetworkMode: 'host' } });
  try {
    await container.start();
    const { StatusCode } = await container.wait();
    if (StatusCode !== 0) throw new Error(`building ${tag} failed (exit ${StatusCode}): ${(await container.logs({ stdout: true, stderr: true })).toString().slice(-2000)}`);
    const [repo, version] = tag.split(':');
    await container.commit({ repo, tag: version, changes: 'ENTRYPOINT ["/usr/local/sbin/berth-host-init"]\nCMD []' });
  } finally {
    await container.remove({ force: true });
  }
  return { tag, built: true };
}

async function main() {
  const started = performance.now();
  const ansible = await ensureAnsible('ansible-core', ansibleVersion);
  const { stdout: ansibleVersionLine } = await run(join(ansible.bin, 'ansible-playbook'), ['--version'], { env: { ...process.env, LC_ALL: 'C.UTF-8' } });
  console.log(ansibleVersionLine.split('\n')[0]);

  const engine = await hostEngine();
  const image = await benchImage(engine.docker, engine.image.tag);
  if (image.built) console.log(`built ${image.tag} (the host image with python3 and python3-apt, for ansible)`);
  const keys = sshKeyPair('berth-bench');
  const work = tempDir('bench-provision');
  cleanups.push(async () => rmSync(work, { recursive: true, force: true }));
  const keyFile = join(work, 'id_ed25519');
  writeFileSync(keyFile, keys.privateKey, { mode: 0o600 });
  const keyVar = 'BERTH_BENCH_SSH_KEY';
  process.env[keyVar] = keys.privateKey;

  // The cluster berth's activity knows: where the key is, which profile the pool runs.
  const config = parseConfig(
    stringify({
      idcs: [{ name: 'bench' }],
      registries: [{ name: 'bench-registry', idc: 'bench', url: 'http://127.0.0.1:5001' }],
      rateCard: { docker: { small: 0.012 } },
      initProfiles: { base: profile },
      clusters: [{ name: 'bench', idc: 'bench', provider: { kind: 'docker' }, ssh: { user: 'root', privateKey: { env: keyVar } }, pools: [{ name: 'web', instanceType: 'small', initProfile: 'base' }] }],
    }),
    join(work, 'berth.yaml'),
  );
  const activities = createHostActivities(config);
  const quiet = new DefaultLogger('ERROR');

  const clusters = new Set<string>();
  cleanups.push(async () => {
    for (const c of clusters) await removeCluster(engine.docker, c);
  });

  /** `n` fresh containers, running, each sshd answering; host keys recorded as waitForSsh records them. */
  async function freshHosts(n: number): Promise<{ cluster: string; hosts: Host[] }> {
    const cluster = `bench-prov-${randomBytes(3).toString('hex')}`;
    clusters.add(cluster);
    const provider = await testDockerProvider(cluster, { image: image.tag });
    const names = Array.from({ length: n }, (_, i) => `h${String(i + 1).padStart(2, '0')}`);
    const machines = await Promise.all(names.map((name) => provider.create(machineSpec(cluster, name, keys.publicKey))));
    const hosts = await Promise.all(
      machines.map(async (m, i) => {
        const session = await connectWhenReady({ address: m.address!, port: m.sshPort!, user: 'root', privateKey: keys.privateKey }, { timeoutMs: 120_000 });
        try {
          await session.run('true');
          return { name: names[i], containerId: m.id, address: m.address!, sshPort: m.sshPort!, hostKeyFingerprint: session.hostKeyFingerprint };
        } finally {
          session.close();
        }
      }),
    );
    return { cluster, hosts };
  }

  async function dropHosts(cluster: string) {
    await removeCluster(engine.docker, cluster);
    clusters.delete(cluster);
  }

  /** berth: the initMachine activity for every host at once; returns each host's step results. */
  async function berthInit(hosts: Host[]): Promise<{ cpuS: number; results: StepResult[][] }> {
    const envs = hosts.map(() => new MockActivityEnvironment({}, { logger: quiet }));
    const cpu0 = process.cpuUsage();
    const results = (await Promise.all(
      hosts.map((h, i) => envs[i].run(activities.initMachine, { cluster: 'bench', pool: 'web', machineName: h.name, address: h.address, sshPort: h.sshPort, hostKeyFingerprint: h.hostKeyFingerprint })),
    )) as StepResult[][];
    const cpu = process.cpuUsage(cpu0);
    return { cpuS: (cpu.user + cpu.system) / 1e6, results };
  }

  /** ansible-playbook over all hosts; returns the play recap per host and the CPU of ansible and its children. */
  async function ansibleInit(hosts: Host[], dir: string): Promise<{ cpuS: number; recap: Record<string, Record<string, number>> }> {
    const inventory = join(dir, 'inventory.ini');
    writeFileSync(inventory, `[bench]\n${hosts.map((h) => `${h.name} ansible_host=${h.address} ansible_port=${h.sshPort} ansible_user=root`).join('\n')}\n`);
    const env = {
      ...process.env,
      LC_ALL: 'C.UTF-8',
      ANSIBLE_CONFIG: join(ansibleDir, 'ansible.cfg'),
      ANSIBLE_HOME: join(dir, 'ansible-home'),
      ANSIBLE_LOCAL_TEMP: join(dir, 'ansible-tmp'),
      ANSIBLE_SSH_CONTROL_PATH_DIR: join(dir, 'cp'),
      ANSIBLE_PRIVATE_KEY_FILE: keyFile,
      ANSIBLE_NOCOLOR: '1',
    };
    // bash's `times` reports the CPU of everything ansible-playbook waited for: its forks, their ssh clients.
    const script = '"$0" "$@"; rc=$?; echo "@@times"; times; exit $rc';
    const out = await run('bash', ['-c', script, join(ansible.bin, 'ansible-playbook'), '-i', inventory, join(ansibleDir, 'provision.yml')], { env, maxBuffer: 64 << 20 }).catch((err) => {
      throw new Error(`ansible-playbook failed (exit ${err.code}):\n${String(err.stdout).slice(-4000)}\n${String(err.stderr).slice(-2000)}`);
    });
    const [output, times] = out.stdout.split('@@times\n');
    const secs = (t: string) => {
      const m = /^(\d+)m([\d.]+)s$/.exec(t)!;
      return Number(m[1]) * 60 + Number(m[2]);
    };
    const cpuS = times
      .trim()
      .split('\n')
      .flatMap((l) => l.trim().split(/\s+/))
      .reduce((sum, t) => sum + secs(t), 0);
    const recap: Record<string, Record<string, number>> = {};
    for (const line of output.slice(output.lastIndexOf('PLAY RECAP')).split('\n').slice(1)) {
      const m = /^(\S+)\s+:\s+(.*)$/.exec(line.trim());
      if (m)
        recap[m[1]] = Object.fromEntries(
          m[2]
            .trim()
            .split(/\s+/)
            .map((kv) => [kv.split('=')[0], Number(kv.split('=')[1])]),
        );
    }
    if (Object.keys(recap).length !== hosts.length) throw new Error(`ansible-playbook's recap names ${Object.keys(recap).length} hosts, not ${hosts.length}:\n${output.slice(-3000)}`);
    return { cpuS, recap };
  }

  /** What the profile leaves on a host, with its own name written as NAME: the same for every host and tool. */
  async function endState(h: Host): Promise<string> {
    const session = await connectWhenReady({ address: h.address, port: h.sshPort, user: 'root', privateKey: keys.privateKey, hostKeyFingerprint: h.hostKeyFingerprint }, { timeoutMs: 30_000 });
    try {
      const state = await session.run(
        `echo "hostname $(hostname) / $(cat /etc/hostname)"; grep '^127\\.0\\.1\\.1' /etc/hosts
sha256sum /etc/chrony/chrony.conf /etc/sysctl.d/90-berth.conf; sysctl net.core.somaxconn
dpkg-query -W -f='\${Package} \${db:Status-Status}\\n' chrony curl`,
        { what: 'read the end state' },
      );
      return state.replaceAll(h.name, 'NAME');
    } finally {
      session.close();
    }
  }

  let reference: string | undefined;
  /** Fresh hosts, the tool's first run (timed), its second run (timed, must change nothing), the end state checked. */
  async function measurePhase(phase: Phase): Promise<Measurement> {
    const [tool, size] = phase.split('-') as [Tool, Size];
    const { cluster, hosts } = await freshHosts(size === 'many' ? manyHosts : 1);
    try {
      const dir = join(work, `${phase}-${cluster}`);
      mkdirSync(dir);
      let firstResult: unknown;
      const once = async (): Promise<number> => {
        if (tool === 'berth') {
          const { cpuS, results } = await berthInit(hosts);
          firstResult ??= results;
          return cpuS;
        }
        const { cpuS, recap } = await ansibleInit(hosts, dir);
        firstResult ??= recap;
        return cpuS;
      };
      const first = await measure(hosts, once);
      const firstRun = firstResult;
      firstResult = undefined;
      const again = await measure(hosts, once);
      const secondRun = firstResult;
      // The first run changed each host; the second changed nothing; every task succeeded.
      if (tool === 'berth') {
        for (const r of firstRun as StepResult[][]) if (!r.some((x) => x.status === 'changed')) throw new Error(`berth's first run changed nothing: ${JSON.stringify(r)}`);
        for (const r of secondRun as StepResult[][]) if (r.some((x) => x.status !== 'ok')) throw new Error(`berth's second run changed something: ${JSON.stringify(r)}`);
      } else {
        for (const [h, r] of Object.entries(firstRun as Record<string, Record<string, number>>)) if (r.failed || r.unreachable || !r.changed) throw new Error(`ansible's first run on ${h}: ${JSON.stringify(r)}`);
        for (const [h, r] of Object.entries(secondRun as Record<string, Record<string, number>>)) if (r.failed || r.unreachable || r.changed) throw new Error(`ansible's second run on ${h} changed something: ${JSON.stringify(r)}`);
      }
      // Both tools leave every host in the same state.
      const states = await Promise.all(hosts.map(endState));
      reference ??= states[0];
      states.forEach((st, i) => {
        if (st !== reference) throw new Error(`${phase}: ${hosts[i].name} ended as\n${st}\nnot as the first host measured:\n${reference}`);
      });
      return { first, again };
    } finally {
      await dropHosts(cluster);
    }
  }

  // Untimed: the mirror's cache, ansible's first start and the page cache get their first visit here, not in round 1.
  console.log(`warm-up: one host with each tool (untimed)...`);
  for (const phase of ['berth-one', 'ansible-one'] as const) await measurePhase(phase);
  console.log(`end state of every host (NAME is its own name):\n${reference!.replace(/^/gm, '  ')}`);

  const cores = cpus().length;
  const pct = (coreS: number, ms: number) => `${((100 * coreS) / (ms / 1000) / cores).toFixed(0)}%`;
  const results = Object.fromEntries(phases.map((p) => [p, [] as Measurement[]])) as Record<Phase, Measurement[]>;
  // The 1-minute load average before each measurement (it still counts the previous measurement's own processes).
  const loads: { round: number; phase: Phase; loadBefore: number }[] = [];
  for (let i = 0; i < runs; i++) {
    // Interleaved, and each round starts with the other tool: neither always runs on a just-warmed mirror.
    const order: Phase[] = i % 2 === 0 ? phases : ['ansible-many', 'berth-many', 'ansible-one', 'berth-one'];
    for (const phase of order) {
      const loadBefore = loadavg()[0];
      loads.push({ round: i + 1, phase, loadBefore });
      const m = await measurePhase(phase);
      results[phase].push(m);
      const f = m.first;
      console.log(
        `round ${i + 1}/${runs} ${phase.padEnd(12)} ${s(f.ms).padStart(7)}  again ${s(m.again.ms).padStart(6)} | cpu: hosts ${f.hostsCpuS.toFixed(1)} s + ${phase.split('-')[0]} ${f.controllerCpuS.toFixed(1)} s = ${pct(f.hostsCpuS + f.controllerCpuS, f.ms)} of ${cores} cores, machine busy ${pct(f.busyCoreS, f.ms)} | ${f.rxMB.toFixed(0)} MB in`,
      );
    }
  }

  const med = (p: Phase, pick: (m: Measurement) => number) => median(results[p].map(pick));
  const summary = Object.fromEntries(
    phases.map((p) => [
      p,
      {
        firstMs: med(p, (m) => m.first.ms),
        againMs: med(p, (m) => m.again.ms),
        hostsCpuS: med(p, (m) => m.first.hostsCpuS),
        controllerCpuS: med(p, (m) => m.first.controllerCpuS),
        busyCoreS: med(p, (m) => m.first.busyCoreS),
        rxMB: med(p, (m) => m.first.rxMB),
        againHostsCpuS: med(p, (m) => m.again.hostsCpuS),
        againControllerCpuS: med(p, (m) => m.again.controllerCpuS),
      },
    ]),
  ) as Record<Phase, { firstMs: number; againMs: number; hostsCpuS: number; controllerCpuS: number; busyCoreS: number; rxMB: number; againHostsCpuS: number; againControllerCpuS: number }>;
  const ratios = {
    berthOverAnsible: summary['berth-many'].firstMs / summary['ansible-many'].firstMs,
    berthOverAnsibleOneHost: summary['berth-one'].firstMs / summary['ansible-one'].firstMs,
    berthOverAnsibleAgain: summary['berth-many'].againMs / summary['ansible-many'].againMs,
    berthManyOverOne: summary['berth-many'].firstMs / summary['berth-one'].firstMs,
    ansibleManyOverOne: summary['ansible-many'].firstMs / summary['ansible-one'].firstMs,
  };
  // What the cores allow: the CPU the run itself needed (in the hosts and in the tool), spread over every core.
  const cpuFloorMs = Object.fromEntries(phases.map((p) => [p, ((summary[p].hostsCpuS + summary[p].controllerCpuS) / cores) * 1000])) as Record<Phase, number>;
  // The same ratio by the CPU each tool's run needed: what the wall-clock ratio is when both have the cores to
  // themselves, whatever else the machine ran meanwhile (other jobs slow a CPU-bound run, not its CPU seconds).
  const cpuRatio = cpuFloorMs['berth-many'] / cpuFloorMs['ansible-many'];
  // Rounds in which other jobs took a share of the cores while the run could have used them.
  const contended = phases.flatMap((p) =>
    results[p].flatMap((m, i) => {
      const own = (m.first.hostsCpuS + m.first.controllerCpuS) / (m.first.ms / 1000) / cores;
      const busy = m.first.busyCoreS / (m.first.ms / 1000) / cores;
      return busy - own > 0.15 ? [`${p} round ${i + 1} (others took ${((busy - own) * 100).toFixed(0)}% of the cores)`] : [];
    }),
  );
  const result = {
    hosts: manyHosts,
    runs,
    profile,
    berth: { how: 'the initMachine activity (createHostActivities(config).initMachine) in-process under MockActivityEnvironment, all hosts concurrently; no Temporal server in the timing' },
    ansible: { version: ansibleVersion, installMs: ansible.installMs ?? null, forks, strategy: 'linear', pipelining: true, controlPersist: '60s', gatherFacts: false, playbook: 'bench/ansible/provision.yml' },
    image: image.tag,
    medians: summary,
    ratios: { ...ratios, berthOverAnsibleByCpu: cpuRatio },
    contended,
    goals: { berthOverAnsibleAtMost0_5: ratios.berthOverAnsible <= 0.5, manyHostsAtMost2xOneHost: ratios.berthManyOverOne <= 2 },
    cpuFloorMs,
    endState: reference,
    measurements: results,
    loads,
    machine: { cores, node: process.version },
    benchMs: performance.now() - started,
  };
  writeResult('provision', result);

  const label = (p: Phase) => `${p.split('-')[0]} ${p.endsWith('many') ? `${manyHosts} hosts` : '1 host'}`;
  const row = (p: Phase) => {
    const x = summary[p];
    return `${label(p).padEnd(17)}${s(x.firstMs).padStart(8)}${s(x.againMs).padStart(8)}${x.hostsCpuS.toFixed(1).padStart(9)}${x.controllerCpuS.toFixed(1).padStart(8)}${s(cpuFloorMs[p]).padStart(9)}${pct(x.busyCoreS, x.firstMs).padStart(7)}${x.rxMB.toFixed(0).padStart(7)}`;
  };
  console.log(`
profile          hostname, chrony [127.0.0.1], sysctl net.core.somaxconn=4096, packages [curl]; ${runs} rounds; ${cores} cores
berth            the initMachine activity's code, all hosts concurrently in one process
ansible          ansible-core ${ansibleVersion}, forks=${forks}, linear strategy, pipelining, ControlPersist, no facts${ansible.installMs !== undefined ? `; installed this run in ${s(ansible.installMs)}` : ''}
medians             first   again  cpu:hosts  tool  floor    busy  MB in
${phases.map(row).join('\n')}
                 (first: fresh hosts; again: the same run on the initialized hosts; cpu in seconds; floor: that CPU
                  over ${cores} cores; busy: the whole machine during the first run, other jobs included)
berth/ansible    ${ratios.berthOverAnsible.toFixed(3)} on ${manyHosts} hosts (goal <= 0.5); ${ratios.berthOverAnsibleOneHost.toFixed(3)} on one host; ${ratios.berthOverAnsibleAgain.toFixed(3)} for the second run on ${manyHosts} hosts
                 by CPU needed (floor/floor) on ${manyHosts} hosts: ${cpuRatio.toFixed(3)}
contended        ${contended.length === 0 ? 'no round: other jobs took less than 15% of the cores in each' : contended.join('; ')}
${`${manyHosts} hosts / 1`.padEnd(17)}berth ${ratios.berthManyOverOne.toFixed(2)}x (goal <= 2x), ansible ${ratios.ansibleManyOverOne.toFixed(2)}x
written to bench/results/provision.json`);
}

runBench(main, cleanups);

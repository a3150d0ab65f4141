// berth's command line, over the API: `bin/berth <command> [options]`. BERTH_API and BERTH_TOKEN say where and
// who; --json prints the API's answer for scripts; the exit code says how it ended (see usage). `copy` alone runs
// without the API (cli/copy.ts).
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiCall } from './api-client.ts';
import { copyCommand, copyUsage } from './copy.ts';
import { CliError, exitCodes } from './errors.ts';
import { progressLines } from './progress.ts';
import { reportLines } from './reconcile-report.ts';

const usage = `usage: berth <command> [options]            (BERTH_API, BERTH_TOKEN; --json for scripts)
${copyUsage}
  replicate <image> --from <idc|registry> --to <a,b> [--watch]
  distribute <image> [--from <idc|registry>] [--watch]
  provision --cluster <c> --pool <p> [--count <n>] [--watch]
  machines [--cluster <c>] [--pool <p>] [--state <s>]
  decommission <machine-id> [--watch]
  reconcile --cluster <c>                   compare the provider with the inventory now; print the report
  orphan destroy|adopt <provider-id> --cluster <c> [--pool <p>] [--name <n>] [--watch]
  failover <ha-group> --reason <text> [--dry-run]
  deploy <service> <version> [--watch]       a rolling deploy: a bar per batch; rollback <service>; pause|resume|approve <service>
  services [<service>]                      services, or one's machines: version, containers, health
  status <workflowId> [--watch]
  costs [--group-by cluster|pool] [--cluster <c>] [--from <date>] [--to <date>]
exit codes: 0 ok, 1 the operation failed, 2 bad input, 3 not allowed, 4 not found, 5 berth or Temporal unreachable`;

const options = {
  json: { type: 'boolean', default: false },
  watch: { type: 'boolean', default: false },
  from: { type: 'string' },
  to: { type: 'string' },
  cluster: { type: 'string' },
  pool: { type: 'string' },
  count: { type: 'string' },
  state: { type: 'string' },
  reason: { type: 'string' },
  name: { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
  'group-by': { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values'];

function need(value: string | undefined, what: string): string {
  if (!value) throw new CliError(`${what} is required\n${usage}`, exitCodes.usage);
  return value;
}

const query = (params: Record<string, string | undefined>) => {
  const q = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined));
  return q.size ? `?${q}` : '';
};

/** Follows a workflow until it closes; a live view on a terminal, a line per change otherwise. */
async function watch(call: ApiCall, workflowId: string, values: Values): Promise<number> {
  const tty = process.stdout.isTTY && !values.json;
  let drawn = 0;
  let last = '';
  for (;;) {
    const status = await call('GET', `/v1/workflows/${encodeURIComponent(workflowId)}`);
    const lines = [`${status.workflowId}  ${status.status}`, ...progressLines(status.progress)];
    const text = lines.join('\n');
    if (!values.json && text !== last) {
      if (tty && drawn) process.stdout.write(`\x1b[${drawn}A\x1b[J`);
      console.log(text);
      drawn = lines.length;
      last = text;
    }
    if (status.status !== 'RUNNING') {
      if (values.json) console.log(JSON.stringify(status));
      else if (status.failure) console.error(`${status.failure.type}: ${status.failure.message}`);
      return status.status === 'COMPLETED' ? exitCodes.ok : exitCodes.failed;
    }
    await sleep(1000);
  }
}

async function started(call: ApiCall, res: { workflowId: string; uiUrl: string }, values: Values): Promise<number> {
  if (values.watch) return watch(call, res.workflowId, values);
  console.log(values.json ? JSON.stringify(res) : `started ${res.workflowId}\n  ${res.uiUrl}`);
  return exitCodes.ok;
}

// A cell as the API gave it: strings as they are, nothing for null, numbers and objects as JSON.
const cell = (value: unknown) => (typeof value === 'string' ? value : value === undefined || value === null ? '' : JSON.stringify(value));

function table(rows: Record<string, unknown>[], columns: string[]): string {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [line(columns), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join('\n');
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'copy') return copyCommand(argv.slice(1));
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true });
  } catch (err) {
    throw new CliError(`${(err as Error).message}\n${usage}`, exitCodes.usage);
  }
  const { values, positionals } = parsed;
  const [command, arg] = positionals;
  if (values.help || !command) {
    console.log(usage);
    return command || values.help ? exitCodes.ok : exitCodes.usage;
  }
  // Loaded here, not above: `copy` does without the API client and its HTTP library.
  const call = (await import('./api-client.ts')).apiClient();
  const print = (body: unknown, human: () => string) => console.log(values.json ? JSON.stringify(body) : human());
  switch (command) {
    case 'replicate':
      return started(call, await call('POST', '/v1/replications', { image: need(arg, 'the image'), source: need(values.from, '--from'), targets: need(values.to, '--to').split(',') }), values);
    case 'distribute':
      return started(call, await call('POST', '/v1/distributions', { image: need(arg, 'the image'), ...(values.from ? { from: values.from } : {}) }), values);
    case 'provision': {
      const res = await call('POST', '/v1/machines', { cluster: need(values.cluster, '--cluster'), pool: need(values.pool, '--pool'), ...(values.count ? { count: Number(values.count) } : {}) });
      if (!values.watch) return (print(res, () => res.workflows.map((w: { workflowId: string }) => `started ${w.workflowId}`).join('\n')), exitCodes.ok);
      let code: number = exitCodes.ok;
      for (const w of res.workflows) code = Math.max(code, await watch(call, w.workflowId, values));
      return code;
    }
    case 'machines': {
      const res = await call('GET', `/v1/machines${query({ cluster: values.cluster, pool: values.pool, state: values.state })}`);
      print(res, () => table(res.machines, ['id', 'cluster', 'pool', 'provider', 'state', 'address', 'sshPort', 'createdAt']));
      return exitCodes.ok;
    }
    case 'decommission':
      return started(call, await call('DELETE', `/v1/machines/${encodeURIComponent(need(arg, 'the machine id'))}`), values);
    case 'reconcile': {
      const cluster = encodeURIComponent(need(values.cluster, '--cluster'));
      const run = await call('POST', `/v1/clusters/${cluster}/reconcile`);
      let status;
      while ((status = await call('GET', `/v1/workflows/${encodeURIComponent(run.workflowId)}`)).status === 'RUNNING') await sleep(1000);
      if (status.status !== 'COMPLETED') throw new CliError(`${run.workflowId} ${status.status}: ${status.failure?.message ?? ''}`, exitCodes.failed);
      print(status.result, () => reportLines(status.result).join('\n'));
      return exitCodes.ok;
    }
    case 'orphan': {
      const [, action, id] = positionals;
      if (action !== 'destroy' && action !== 'adopt') throw new CliError(`orphan destroy or orphan adopt, not "${action ?? ''}"\n${usage}`, exitCodes.usage);
      const path = `/v1/clusters/${encodeURIComponent(need(values.cluster, '--cluster'))}/orphans/${encodeURIComponent(need(id, 'the provider id'))}/${action}`;
      const body = action === 'adopt' ? { ...(values.pool ? { pool: values.pool } : {}), ...(values.name ? { name: values.name } : {}) } : undefined;
      return started(call, await call('POST', path, body), values);
    }
    case 'failover': {
      const res = await call('POST', `/v1/ha-groups/${encodeURIComponent(need(arg, 'the HA group'))}/failover`, { reason: need(values.reason, '--reason'), ...(values['dry-run'] ? { dryRun: true } : {}) });
      print(res, () =>
        res.dryRun
          ? [`dry run: nothing changed`, ...res.steps.map((s: string) => `  - ${s}`), `RPO (${res.rpo.source}): ${res.rpo.total} images`, ...res.rpo.missing.map((m: { image: string }) => `  ${m.image}`)].join('\n')
          : `failed over ${res.from} -> ${res.to} in ${res.rtoMs} ms; RPO ${res.rpo.total} images`,
      );
      return exitCodes.ok;
    }
    case 'deploy': {
      const version = need(positionals[2], 'the version');
      return started(call, await call('POST', `/v1/services/${encodeURIComponent(need(arg, 'the service'))}/deploy`, { version }), values);
    }
    case 'rollback':
      return started(call, await call('POST', `/v1/services/${encodeURIComponent(need(arg, 'the service'))}/rollback`), values);
    case 'pause':
    case 'resume':
    case 'approve': {
      const res = await call('POST', `/v1/services/${encodeURIComponent(need(arg, 'the service'))}/${command}`);
      print(res, () => `${res.workflowId}: ${res.status}`);
      return exitCodes.ok;
    }
    case 'services': {
      if (!arg) {
        const res = await call('GET', '/v1/services');
        print(res, () =>
          table(
            res.services.map((s: { lastRelease: { version: string; outcome: string } | null }) => ({ ...s, release: s.lastRelease ? `${s.lastRelease.version} ${s.lastRelease.outcome}` : '' })),
            ['name', 'project', 'cluster', 'pool', 'replicas', 'release'],
          ),
        );
        return exitCodes.ok;
      }
      const res = await call('GET', `/v1/services/${encodeURIComponent(arg)}`);
      const rows = res.machines.flatMap((m: { machine: string; address: string; version: string; health: string; containers: { replica: number; state: string; ports: Record<string, number> }[] }) =>
        m.containers.map((c) => ({
          machine: m.machine,
          version: m.version,
          health: m.health,
          replica: c.replica,
          state: c.state,
          ports: Object.entries(c.ports)
            .map(([p, h]) => `${m.address}:${h}->${p}`)
            .join(' '),
        })),
      );
      print(res, () => table(rows, ['machine', 'replica', 'version', 'state', 'health', 'ports']));
      return exitCodes.ok;
    }
    case 'status': {
      const id = need(arg, 'the workflow ID');
      if (values.watch) return watch(call, id, values);
      const res = await call('GET', `/v1/workflows/${encodeURIComponent(id)}`);
      print(res, () => [`${res.workflowId}  ${res.status}`, ...progressLines(res.progress), ...(res.failure ? [`${res.failure.type}: ${res.failure.message}`] : [])].join('\n'));
      return res.status === 'FAILED' || res.status === 'CANCELLED' || res.status === 'TERMINATED' || res.status === 'TIMED_OUT' ? exitCodes.failed : exitCodes.ok;
    }
    case 'costs': {
      const res = await call('GET', `/v1/costs${query({ groupBy: values['group-by'], cluster: values.cluster, from: values.from, to: values.to })}`);
      const rows = res.costs.map((r: { cluster: string; pool?: string; machineHours: number; cost: number }) => ({ ...r, machineHours: r.machineHours.toFixed(2), cost: r.cost.toFixed(4) }));
      print(res, () => table(rows, res.groupBy === 'pool' ? ['cluster', 'pool', 'machineHours', 'cost'] : ['cluster', 'machineHours', 'cost']));
      return exitCodes.ok;
    }
    default:
      throw new CliError(`unknown command "${command}"\n${usage}`, exitCodes.usage);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(`berth: ${err instanceof Error ? err.message : err}`);
    process.exit(err instanceof CliError ? err.exitCode : exitCodes.failed);
  },
);

// A berth worker process:
//   node --import tsx workers/main.ts [--idc idc-a,idc-b] [--endpoint hub] [--no-main] [--no-idc] [--check]
// Without flags it serves the main task queue, every IDC's queue and every HA group's own endpoint queue (the
// embedded default). In production the main worker runs with --no-idc, each IDC's worker with --idc <idc> --no-main
// near that IDC's registries, and the worker beside an HA group's nginx with --endpoint <group> --no-main --no-idc
// (the group's endpoint.taskQueue: switch, verify, push log). With any flag, endpoint queues only with --endpoint:
// a worker without the nginx files must never take the endpoint's work.
// --check validates berth.yaml and the flags, prints the queues, and starts nothing.
// SIGTERM or SIGINT: stop polling, let in-flight work finish (activities get workers.shutdownGraceSeconds), exit.
import { parseArgs } from 'node:util';
import { endpointTaskQueue } from '../planning/ha-plan.ts';
import { ConfigError, idcTaskQueue, loadConfig } from '../config/load.ts';
import { configPath } from '../config/path.ts';
import { startWorkers } from './run.ts';

const { values } = parseArgs({
  options: {
    idc: { type: 'string' },
    endpoint: { type: 'string' },
    'no-main': { type: 'boolean', default: false },
    'no-idc': { type: 'boolean', default: false },
    check: { type: 'boolean', default: false },
  },
});
let config;
try {
  config = loadConfig(configPath());
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}
const main = !values['no-main'];
const idcs = values['no-idc'] ? [] : (values.idc?.split(',').filter(Boolean) ?? config.idcs.map((d) => d.name));
const unknown = idcs.filter((idc) => !config.idcs.some((d) => d.name === idc));
// Groups without endpoint.taskQueue run their endpoint activities on the main queue: nothing of their own to serve.
const ownQueue = config.haGroups.filter((g) => g.endpoint.taskQueue).map((g) => g.name);
const anyRole = values.idc !== undefined || values['no-main'] || values['no-idc'];
const endpoints = values.endpoint?.split(',').filter(Boolean) ?? (anyRole ? [] : ownQueue);
const noQueue = endpoints.filter((g) => !ownQueue.includes(g));
const problem =
  unknown.length > 0
    ? `unknown IDC ${unknown.join(', ')} (berth.yaml has ${config.idcs.map((d) => d.name).join(', ')})`
    : noQueue.length > 0
      ? `no endpoint.taskQueue for HA group ${noQueue.join(', ')} in berth.yaml (groups with one: ${ownQueue.join(', ') || 'none'})`
      : !main && idcs.length === 0 && endpoints.length === 0
        ? 'nothing to serve: --no-main with no IDC and no endpoint'
        : undefined;
if (problem) {
  console.error(problem);
  process.exit(1);
}
if (values.check) {
  const endpointQueues = config.haGroups.filter((g) => endpoints.includes(g.name)).map((g) => endpointTaskQueue(config, g));
  const queues = [...new Set([...(main ? [config.taskQueues.main] : []), ...idcs.map((idc) => idcTaskQueue(config, idc)), ...endpointQueues])];
  console.log(`berth worker would poll ${queues.join(', ')} on ${config.temporal.address}`);
  process.exit(0);
}
const workers = await startWorkers(config, { main, idcs, endpoints });
const workflows = workers.workflowSource ? `; workflows from ${workers.workflowSource}` : '';
console.log(`berth worker polling ${workers.taskQueues.join(', ')} on ${config.temporal.address}${workflows}`);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.log(`${sig}: draining (activities in flight get ${config.workers.shutdownGraceSeconds} s)`);
    void workers.shutdown();
  });
}
await workers.done;
console.log('berth worker stopped');

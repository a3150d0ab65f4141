// A berth worker process: `node --import tsx workers/main.ts [--idc idc-a,idc-b] [--no-main] [--no-idc] [--check]`.
// Without flags it serves the main task queue and every IDC's queue (the embedded default). In production the
// main worker runs with --no-idc and each IDC's worker with --idc <idc> --no-main, near that IDC's registries.
// --check validates berth.yaml and the flags, prints the queues, and starts nothing.
// SIGTERM or SIGINT: stop polling, let in-flight work finish (activities get workers.shutdownGraceSeconds), exit.
import { parseArgs } from 'node:util';
import { ConfigError, idcTaskQueue, loadConfig } from '../config/load.ts';
import { configPath } from '../config/path.ts';
import { startWorkers } from './run.ts';

const { values } = parseArgs({
  options: {
    idc: { type: 'string' },
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
if (unknown.length > 0 || (!main && idcs.length === 0)) {
  console.error(unknown.length > 0 ? `unknown IDC ${unknown.join(', ')} (berth.yaml has ${config.idcs.map((d) => d.name).join(', ')})` : 'nothing to serve: --no-main with no IDC');
  process.exit(1);
}
if (values.check) {
  const queues = [...(main ? [config.taskQueues.main] : []), ...idcs.map((idc) => idcTaskQueue(config, idc))];
  console.log(`berth worker would poll ${queues.join(', ')} on ${config.temporal.address}`);
  process.exit(0);
}
const workers = await startWorkers(config, { main, idcs });
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

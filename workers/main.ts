// A berth worker process: `node --import tsx workers/main.ts [--idc idc-a,idc-b] [--no-main]`.
// Without flags it serves the main task queue and every IDC's queue (the embedded default).
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.ts';
import { configPath } from '../config/path.ts';
import { startWorkers } from './run.ts';

const { values } = parseArgs({ options: { idc: { type: 'string' }, 'no-main': { type: 'boolean', default: false } } });
let config;
try {
  config = loadConfig(configPath());
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}
const workers = await startWorkers(config, { main: !values['no-main'], idcs: values.idc?.split(',').filter(Boolean) });
console.log(`berth worker polling ${workers.taskQueues.join(', ')} on ${config.temporal.address}`);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void workers.shutdown());
await workers.done;

// An activity-only worker of a config's main task queue, as a process of its own: `node --import tsx
// test/harness/activity-worker.ts` with BERTH_CONFIG. What its activities block on (a locked SQLite file) then
// blocks this process only, never the workflows, which another worker runs. Prints `activities polling`.
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities/index.ts';
import { loadConfig } from '../../config/load.ts';
import { configPath } from '../../config/path.ts';

const config = loadConfig(configPath());
const connection = await NativeConnection.connect({ address: config.temporal.address });
const worker = await Worker.create({ connection, namespace: config.temporal.namespace, taskQueue: config.taskQueues.main, activities: createActivities(config) });
process.once('SIGTERM', () => worker.shutdown());
console.log('activities polling');
await worker.run();
await connection.close();

import { fileURLToPath } from 'node:url';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel } from '@temporalio/worker';
import { pino } from 'pino';
import { createActivities } from '../activities/index.ts';
import { idcTaskQueue, type BerthConfig } from '../config/load.ts';

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export interface WorkerSet {
  /** Resolves when every worker has stopped; rejects if one fails. */
  done: Promise<void>;
  /** Graceful: stop polling, let in-flight tasks finish, then resolve `done`. */
  shutdown(): Promise<void>;
  taskQueues: string[];
}

/**
 * Starts berth's workers in this process: the main worker (workflows and control activities) and/or one worker
 * per IDC task queue (activities that must run inside that IDC). `npm start` runs them all in one process; in
 * production each IDC runs its own with `--idc`.
 */
export async function startWorkers(config: BerthConfig, opts: { main?: boolean; idcs?: string[] } = {}): Promise<WorkerSet> {
  installRuntime();
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const activities = createActivities(config);
  const namespace = config.temporal.namespace;
  const workers: Worker[] = [];
  // Copies checkpoint their uploads in heartbeat details; sending them often keeps what a retry must redo small.
  const common = { connection, namespace, activities, maxHeartbeatThrottleInterval: '2 seconds' } as const;
  if (opts.main ?? true) workers.push(await Worker.create({ ...common, taskQueue: config.taskQueues.main, workflowsPath }));
  for (const idc of opts.idcs ?? config.idcs.map((d) => d.name)) {
    workers.push(await Worker.create({ ...common, taskQueue: idcTaskQueue(config, idc) }));
  }
  // If one worker fails, stop the others too: a process that serves only some of its queues is worse than none.
  const done = Promise.allSettled(
    workers.map((w) =>
      w.run().catch((err) => {
        for (const other of workers) if (other.getState() === 'RUNNING') other.shutdown();
        throw err;
      }),
    ),
  ).then(async (results) => {
    await connection.close();
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  });
  return {
    done,
    taskQueues: workers.map((w) => w.options.taskQueue),
    async shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await done;
    },
  };
}

let runtimeInstalled = false;

/**
 * The SDK's process-wide runtime, once, logging JSON lines through pino at BERTH_LOG_LEVEL (default WARN).
 * Per-IDC workers run activities only, so the SDK's warning that they have no workflows is dropped.
 */
function installRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const level = (process.env.BERTH_LOG_LEVEL?.toUpperCase() ?? 'WARN') as LogLevel;
  const log = pino({ name: 'berth-worker', level: level.toLowerCase() });
  const logger = new DefaultLogger(level, ({ level: l, message, meta }) => {
    if (message.startsWith('No workflows registered')) return;
    log[l.toLowerCase() as 'info'](meta ?? {}, message);
  });
  // The SDK's native core logs through the same logger, so every line a worker prints is JSON.
  // berth's processes handle their own signals (npm start and workers/main.ts shut down gracefully, test
  // processes stop their servers), so the SDK must not install handlers of its own.
  Runtime.install({ logger, shutdownSignals: [], telemetryOptions: { logging: { filter: { core: level, other: 'ERROR' }, forward: {} } } });
}

import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel, type WorkerOptions } from '@temporalio/worker';
import { pino } from 'pino';
import { createActivities } from '../activities/index.ts';
import { dataConverter } from '../codec/data-converter.ts';
import { endpointTaskQueue } from '../planning/ha-plan.ts';
import { idcTaskQueue, type BerthConfig } from '../config/load.ts';
import { countActivityFailures } from '../metrics/activity-failures.ts';
import { sdkMetricsExporter, serveMetrics } from '../metrics/exposition.ts';

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

export interface WorkerSet {
  /** Resolves when every worker has stopped; rejects if one fails. */
  done: Promise<void>;
  /** Graceful: stop polling, let in-flight tasks finish (activities get `workers.shutdownGraceSeconds`), then resolve `done`. */
  shutdown(): Promise<void>;
  taskQueues: string[];
  /** Where the main worker's workflow code comes from: the prebuilt bundle (BERTH_WORKFLOW_BUNDLE) or the sources. */
  workflowSource?: string;
}

/**
 * Starts berth's workers in this process: the main worker (workflows and control activities), one worker per IDC
 * task queue (activities that must run inside that IDC) and one per HA endpoint queue (`endpoint.taskQueue`:
 * activities that need the nginx files). `npm start` runs them all in one process; in production each IDC runs its
 * own with `--idc`, and the host of an HA group's nginx its own with `--endpoint`.
 */
export async function startWorkers(config: BerthConfig, opts: { main?: boolean; idcs?: string[]; endpoints?: string[] } = {}): Promise<WorkerSet> {
  const metricsPort = Number(process.env.BERTH_METRICS_PORT) || config.metrics.port;
  await installRuntime(metricsPort !== undefined);
  const workflows = opts.main === false ? undefined : workflowCode();
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const activities = createActivities(config);
  const workers: Worker[] = [];
  const common = {
    connection,
    namespace: config.temporal.namespace,
    activities,
    // Copies checkpoint their uploads in heartbeat details; sending them often keeps what a retry must redo small.
    maxHeartbeatThrottleInterval: '2 seconds',
    maxConcurrentActivityTaskExecutions: config.workers.maxConcurrentActivityTaskExecutions,
    shutdownGraceTime: `${config.workers.shutdownGraceSeconds} seconds`,
    interceptors: { activity: [countActivityFailures] },
    // Payloads are encrypted when berth.yaml says so; the workers decrypt and encrypt them with the same keys.
    dataConverter: dataConverter(config),
  } satisfies Partial<WorkerOptions>;
  if (workflows) {
    workers.push(await Worker.create({ ...common, ...workflows.options, taskQueue: config.taskQueues.main, maxCachedWorkflows: config.workers.maxCachedWorkflows }));
  }
  for (const idc of opts.idcs ?? config.idcs.map((d) => d.name)) {
    workers.push(await Worker.create({ ...common, taskQueue: idcTaskQueue(config, idc) }));
  }
  // The queues of HA endpoints (activities that need the nginx files), each once: groups may share a queue.
  const groups = config.haGroups.filter((g) => (opts.endpoints ?? config.haGroups.map((x) => x.name)).includes(g.name) && g.endpoint.taskQueue);
  for (const taskQueue of new Set(groups.map((g) => endpointTaskQueue(config, g)))) {
    if (!workers.some((w) => w.options.taskQueue === taskQueue)) workers.push(await Worker.create({ ...common, taskQueue }));
  }
  // Bound before the workers run: a port that is taken fails the start rather than leaving workers unwatched.
  const metrics = metricsPort === undefined ? undefined : await serveMetrics({ host: config.metrics.host, port: metricsPort, healthy: () => workers.every((w) => w.getState() === 'RUNNING') });
  // If one worker fails, stop the others too: a process that serves only some of its queues is worse than none.
  const done = Promise.allSettled(
    workers.map((w) =>
      w.run().catch((err) => {
        for (const other of workers) if (other.getState() === 'RUNNING') other.shutdown();
        throw err;
      }),
    ),
  ).then(async (results) => {
    metrics?.close();
    await connection.close();
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  });
  return {
    done,
    taskQueues: workers.map((w) => w.options.taskQueue),
    workflowSource: workflows?.source,
    async shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
      await done;
    },
  };
}

/**
 * The workflow code: in production the bundle built into the image (workers/bundle.ts), so a worker starts without
 * webpack and every worker of a release runs the same bytes; otherwise bundled from the sources at start.
 */
function workflowCode(): { options: Pick<WorkerOptions, 'workflowBundle' | 'workflowsPath'>; source: string } {
  const codePath = process.env.BERTH_WORKFLOW_BUNDLE;
  if (!codePath) return { options: { workflowsPath }, source: workflowsPath };
  // Named but missing is a broken deployment: bundling the sources instead would hide it.
  if (!existsSync(codePath)) throw new Error(`BERTH_WORKFLOW_BUNDLE names ${codePath}, which does not exist: build it with workers/bundle.ts`);
  return { options: { workflowBundle: { codePath } }, source: codePath };
}

let runtimeInstalled = false;

/**
 * The SDK's process-wide runtime, once, logging JSON lines through pino at BERTH_LOG_LEVEL (default WARN), with
 * its Prometheus exporter when this process serves metrics. Per-IDC workers run activities only, so the SDK's
 * warning that they have no workflows is dropped.
 */
async function installRuntime(withMetrics: boolean): Promise<void> {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const level = (process.env.BERTH_LOG_LEVEL?.toUpperCase() ?? 'WARN') as LogLevel;
  // The SDK puts workflowId, activityId, activityType, taskQueue and attempt in each line's meta; errors go
  // under `error`, which pino would print as {} without a serializer.
  const log = pino({ name: 'berth-worker', level: level.toLowerCase(), serializers: { error: pino.stdSerializers.err } });
  const logger = new DefaultLogger(level, ({ level: l, message, meta }) => {
    if (message.startsWith('No workflows registered')) return;
    log[l.toLowerCase() as 'info'](meta ?? {}, message);
  });
  // The SDK's native core logs through the same logger, so every line a worker prints is JSON.
  // berth's processes handle their own signals (npm start and workers/main.ts shut down gracefully, test
  // processes stop their servers), so the SDK must not install handlers of its own.
  Runtime.install({
    logger,
    shutdownSignals: [],
    telemetryOptions: {
      logging: { filter: { core: level, other: 'ERROR' }, forward: {} },
      ...(withMetrics ? { metrics: await sdkMetricsExporter() } : {}),
    },
  });
}

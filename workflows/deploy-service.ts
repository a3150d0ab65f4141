import { ActivityFailure, ApplicationFailure, ChildWorkflowFailure, condition, executeChild, isCancellation, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import { activityOptions, activityTiming, resolveOptions } from '../contracts/activity-timing.ts';
import {
  approveDeployUpdate,
  deployProgressQuery,
  pauseDeployUpdate,
  resumeDeployUpdate,
  type DeployProgress,
  type DeployServiceInput,
  type DeployServiceResult,
  type MachineRollout,
  type ServiceContainer,
} from '../contracts/services.ts';
import { planBatches } from './deploy-batches.ts';
import { distributeImage } from './distribute-image.ts';
import { describeFailure } from './failures.ts';
import { serviceMachines, type ServiceMachine, type Target } from './service-machines.ts';

/**
 * Rolls a service out to a new version on its pool's machines: the image is made sure of in the cluster IDC's
 * registry (distributed there when missing), then machines are replaced batch by batch (deploy-batches.ts bounds
 * what is out of service), each replica pulled, started, health-checked and its old container stopped and removed.
 * A batch that fails puts every machine the deploy touched back on its previous version and fails naming the
 * machine and the check. `pause`, `resume` and `approve` (after the canary, when the service asks for approval)
 * are Updates; the release is recorded with how it ended.
 */
export async function deployService(input: DeployServiceInput): Promise<DeployServiceResult> {
  const { service, version } = input;
  const { workflowId, runId } = workflowInfo();
  const image = `${service.repository}:${version}`;
  const progress: DeployProgress = { status: 'resolving', version, batches: [], machines: {} };
  let paused = false;
  let approved = false;
  setHandler(deployProgressQuery, () => progress);
  setHandler(pauseDeployUpdate, () => ((paused = true), progress.status));
  setHandler(resumeDeployUpdate, () => ((paused = false), progress.status));
  setHandler(approveDeployUpdate, () => ((approved = true), progress.status), {
    validator: () => {
      if (!service.approval) throw new Error(`${service.name} does not ask for approval`);
      if (approved) throw new Error('already approved');
    },
  });

  const { recordRelease, finishRelease, listPoolMachines } = proxyActivities<Activities>(activityOptions(activityTiming.serviceRecord));
  const { listServiceContainers, roll, clear } = serviceMachines(service, input.idcTaskQueue);

  await recordRelease({ service: service.name, version, requestedBy: input.requestedBy, reason: input.reason ?? 'deploy', workflowId, runId });
  const fail = async (outcome: 'failed' | 'rolled-back', message: string, details?: unknown): Promise<never> => {
    progress.status = 'failed';
    await finishRelease({ runId, outcome, detail: message });
    throw ApplicationFailure.create({ type: outcome === 'failed' ? 'DeployFailed' : 'DeployRolledBack', message, nonRetryable: true, details: details === undefined ? undefined : [details] });
  };

  // 1. The image in the cluster IDC's registry, by digest: every machine runs exactly the same image.
  const digest = await resolveDigest(input, image, progress).catch((err) => {
    if (isCancellation(err)) throw err;
    return fail('failed', describeFailure(err));
  });
  progress.digest = digest;
  await finishRelease({ runId, outcome: 'running', digest });
  const target: Target = { version, digest };

  // 2. What each ready machine of the pool runs now: a machine already on this digest is not touched.
  progress.status = 'rolling';
  const machines = (await listPoolMachines({ cluster: service.cluster, pool: service.pool })).filter((m) => m.state === 'ready');
  const current: Record<string, ServiceContainer[]> = {};
  const names: Record<string, string> = {};
  const machineOf = (machineId: string): ServiceMachine => ({ machineId, name: names[machineId] });
  for (const m of machines) {
    names[m.machineId] = m.name;
    current[m.machineId] = await listServiceContainers({ machineId: m.machineId, service: service.name });
    const on = onTarget(current[m.machineId], service.replicas, target);
    progress.machines[m.name] = { machineId: m.machineId, name: m.name, status: on ? 'unchanged' : 'pending', previous: previousOf(current[m.machineId], target)?.version };
  }
  const toUpdate = machines.filter((m) => progress.machines[m.name].status === 'pending').map((m) => m.machineId);
  const batches = planBatches(toUpdate, service);
  progress.batches = batches.map((b) => ({ status: 'pending', machines: b.machines.map((s) => names[s.machineId]), replaced: 0, total: b.machines.length * service.replicas }));

  // 3. Batch by batch; a failure rolls back every machine this deploy touched.
  const touched: string[] = [];
  for (const [i, batch] of batches.entries()) {
    if (paused) {
      progress.status = 'paused';
      await condition(() => !paused);
      progress.status = 'rolling';
    }
    const bar = progress.batches[i];
    bar.status = 'running';
    const failures: string[] = [];
    await Promise.all(
      batch.machines.map(async ({ machineId, surge }) => {
        const m = progress.machines[names[machineId]];
        touched.push(machineId);
        m.status = 'updating';
        try {
          await roll(machineOf(machineId), image, target, surge, () => bar.replaced++);
          m.status = 'done';
        } catch (err) {
          if (isCancellation(err)) throw err;
          m.status = 'failed';
          m.error = describeFailure(err);
          failures.push(m.error);
        }
      }),
    );
    if (failures.length > 0) {
      bar.status = 'failed';
      progress.status = 'rolling-back';
      const notBack = await rollBack(touched);
      const back = notBack.length === 0 ? 'every machine it touched is back on its previous version' : `rolling back failed on ${notBack.join('; ')}`;
      await fail(notBack.length === 0 ? 'rolled-back' : 'failed', `${service.name} ${version} failed in batch ${i + 1} of ${batches.length}: ${failures.join('; ')}; ${back}`, progress);
    }
    bar.status = 'done';
    if (batch.canary && i < batches.length - 1) {
      bar.status = 'waiting-approval';
      progress.status = 'waiting-approval';
      await condition(() => approved);
      bar.status = 'done';
      progress.status = 'rolling';
    }
  }

  /** Each touched machine back on what it ran before (a machine new to the service loses the new containers). */
  async function rollBack(machineIds: string[]): Promise<string[]> {
    const failed: string[] = [];
    await Promise.all(
      machineIds.map(async (machineId) => {
        const m: MachineRollout = progress.machines[names[machineId]];
        const previous = previousOf(current[machineId], target);
        m.status = 'rolling-back';
        try {
          if (previous) await roll(machineOf(machineId), image, previous, true, () => undefined);
          else await clear(machineOf(machineId), version, 'healthy', `${version} rolled back`);
          m.status = 'rolled-back';
        } catch (err) {
          if (isCancellation(err)) throw err;
          failed.push(`${m.name}: ${describeFailure(err)}`);
        }
      }),
    );
    return failed;
  }

  progress.status = 'done';
  await finishRelease({ runId, outcome: 'succeeded' });
  const byStatus = (s: MachineRollout['status']) =>
    Object.values(progress.machines)
      .filter((m) => m.status === s)
      .map((m) => m.name);
  return { version, digest, updated: byStatus('done'), unchanged: byStatus('unchanged') };
}

/** The image's digest in the cluster IDC's registry; distributed there first when it is missing. */
async function resolveDigest(input: DeployServiceInput, image: string, progress: DeployProgress): Promise<string> {
  const { resolveImage } = proxyActivities<Activities>(resolveOptions(image, input.registry));
  try {
    return (await resolveImage({ image, registry: input.registry.registry })).digest;
  } catch (err) {
    const missing = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'ImageNotFound';
    if (!missing || !input.distribution) throw err;
  }
  progress.status = 'distributing';
  try {
    await executeChild(distributeImage, { workflowId: `${workflowInfo().workflowId}/distribute`, args: [{ image, plan: input.distribution }], staticSummary: `distribute ${image} for ${input.service.name}` });
  } catch (err) {
    throw err instanceof ChildWorkflowFailure ? err.cause : err;
  }
  progress.status = 'resolving';
  return (await resolveImage({ image, registry: input.registry.registry })).digest;
}

/** Whether a machine runs every wanted replica of the target, and nothing else. */
function onTarget(containers: ServiceContainer[], replicas: number, target: Target): boolean {
  const running = containers.filter((c) => c.digest === target.digest && c.state === 'running' && c.replica < replicas);
  return new Set(running.map((c) => c.replica)).size === replicas && containers.length === replicas;
}

/** What a machine ran before this deploy: the version most of its other containers are on. */
function previousOf(containers: ServiceContainer[], target: Target): Target | undefined {
  const counts = new Map<string, { t: Target; n: number }>();
  for (const c of containers.filter((x) => x.digest !== target.digest)) {
    const e = counts.get(c.digest) ?? { t: { version: c.version, digest: c.digest }, n: 0 };
    e.n++;
    counts.set(c.digest, e);
  }
  return [...counts.values()].sort((a, b) => b.n - a.n)[0]?.t;
}

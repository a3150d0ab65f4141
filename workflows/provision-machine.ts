import { ActivityCancellationType, ApplicationFailure, CancellationScope, ChildWorkflowFailure, executeChild, isCancellation, patched, proxyActivities, setHandler, uuid4 } from '@temporalio/workflow';
import type { Activities } from '../activities/index.ts';
import type { DestroyOutcome } from '../activities/machines.ts';
import { activityOptions, activityTiming } from '../contracts/activity-timing.ts';
import { machineProgressQuery, type MachineTarget, type ProvisionResult, type ScalePoolInput, type ScalePoolResult } from '../contracts/provisioning.ts';
import { describeFailure } from './failures.ts';
import { pool } from './pool.ts';
import { serviceMachines, type ServiceMachine } from './service-machines.ts';

const machineStep = activityOptions(activityTiming.machineStep);

// 0.2.0: compensation destroys until it succeeds (and by idempotency key when the create never answered); a
// cancellation while reserving gives the reservation back. Histories of 0.1.0 replay the old commands.
const destroyUntilGone = 'provision-destroy-until-gone';

/** What compensation did, as the failure says it: only what happened. */
const compensated = (outcome: DestroyOutcome | undefined) => (outcome?.destroyed.length ? `${outcome.destroyed.join(', ')} was destroyed at the provider` : 'nothing had been created at the provider');

/**
 * Provisions one machine as a saga: budget check -> create (or adopt an orphan) -> wait until running -> wait for
 * SSH and pin its host key -> run the cluster's init profile -> ready in its pool. Any failure after the machine was
 * asked for, and a cancellation, destroys it (in a scope that cannot be cancelled, retried until it is gone) and
 * records why in the inventory; a cancellation while reserving gives the reservation back.
 */
export async function provisionMachine(target: MachineTarget): Promise<ProvisionResult> {
  const { cluster, name } = target;
  const machineId = target.machineId ?? newMachineId(cluster, name);
  const step = { status: 'reserving', step: undefined as string | undefined };
  setHandler(machineProgressQuery, () => ({ [name]: { status: step.status, step: step.step } }));
  const untilGone = patched(destroyUntilGone);
  const { pinMachineHostKey, setMachineState } = proxyActivities<Activities>(machineStep);
  // A cancelled reservation is waited for, so that what it recorded is given back; 0.1.0 did not wait.
  const { reserveMachine } = proxyActivities<Activities>(untilGone ? { ...machineStep, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED } : machineStep);
  const { destroyMachine } = proxyActivities<Activities>(untilGone ? activityOptions(activityTiming.destroyMachine, { summary: `destroy ${name}` }) : machineStep);
  // A cancelled create is waited for, so that compensation knows the machine the provider may have made.
  const { createMachine, adoptMachine } = proxyActivities<Activities>({ ...machineStep, cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED });
  const { waitForSsh } = proxyActivities<Activities>(activityOptions(activityTiming.waitForSsh, { taskQueue: target.idcTaskQueue, summary: `wait for SSH on ${name}` }));
  const { initMachine } = proxyActivities<Activities>(activityOptions(activityTiming.initMachine, { taskQueue: target.idcTaskQueue, summary: `init ${name}` }));
  const { waitMachineRunning } = proxyActivities<Activities>(activityOptions(activityTiming.waitMachineRunning));

  // Nothing exists yet if the reservation is refused (budget): nothing to compensate.
  try {
    await reserveMachine({ machineId, cluster, pool: target.pool, name });
  } catch (err) {
    if (!isCancellation(err)) throw ApplicationFailure.create({ type: 'ProvisioningRefused', message: `${cluster}/${target.pool}/${name}: ${describeFailure(err)}; nothing was created`, nonRetryable: true });
    // The reservation may have been recorded before the cancellation came: it must not count against the budget.
    if (untilGone) await CancellationScope.nonCancellable(() => destroyMachine({ machineId, cluster, reason: 'provisioning was cancelled while reserving' }));
    throw err;
  }
  try {
    step.status = 'creating';
    if (target.adopt) await adoptMachine({ machineId, cluster, providerId: target.adopt.providerId });
    else await createMachine({ machineId, cluster });
    step.status = 'starting';
    const { address, sshPort } = await waitMachineRunning({ machineId, cluster });
    step.status = 'connecting';
    const { hostKeyFingerprint } = await waitForSsh({ cluster, address, sshPort });
    await pinMachineHostKey({ machineId, fingerprint: hostKeyFingerprint });
    step.status = 'initializing';
    await setMachineState({ machineId, state: 'initializing' });
    const steps = await initMachine({ cluster, pool: target.pool, machineName: name, address, sshPort, hostKeyFingerprint });
    await setMachineState({ machineId, state: 'ready', detail: `${steps.filter((s) => s.status === 'changed').length} of ${steps.length} init steps changed the host` });
    step.status = 'ready';
    return { machineId, address, sshPort, hostKeyFingerprint, steps };
  } catch (err) {
    const reason = isCancellation(err) ? 'provisioning was cancelled' : describeFailure(err);
    step.status = 'destroying';
    const outcome = await CancellationScope.nonCancellable(() => destroyMachine({ machineId, cluster, reason }));
    step.status = 'destroyed';
    throw isCancellation(err) ? err : ApplicationFailure.create({ type: 'ProvisioningFailed', message: `${cluster}/${target.pool}/${name}: ${reason}; ${compensated(outcome)}`, nonRetryable: true });
  }
}

/**
 * Takes a machine out of its pool: decommissioning -> its services' containers stopped (drained) -> destroyed at
 * its provider -> recorded. A machine whose engine cannot be reached is destroyed all the same: its containers go
 * with it.
 */
export async function decommissionMachine({ machineId, cluster, idcTaskQueue }: { machineId: string; cluster: string; idcTaskQueue?: string }): Promise<void> {
  const { setMachineState } = proxyActivities<Activities>(machineStep);
  // 0.2.0: the destroy is retried until the machine is gone, as compensation's is.
  const { destroyMachine } = proxyActivities<Activities>(patched(destroyUntilGone) ? activityOptions(activityTiming.destroyMachine) : machineStep);
  await setMachineState({ machineId, state: 'decommissioning' });
  // Decommissions started before services existed carry no IDC queue and had nothing to drain.
  if (idcTaskQueue && patched('drain-services-before-destroy')) {
    const { drainServices } = proxyActivities<Activities>(activityOptions(activityTiming.drainServices, { taskQueue: idcTaskQueue, summary: 'drain services' }));
    await drainServices({ machineId }).catch((err) => {
      if (isCancellation(err)) throw err;
    });
  }
  await destroyMachine({ machineId, cluster });
}

/**
 * Brings a pool to `desired` machines: new ones are provisioned as child workflows, never more than
 * `maxConcurrent` at a time; surplus ones (newest first) are decommissioned. A failed machine does not stop the
 * others; the result lists what happened to each.
 */
export async function scalePool(input: ScalePoolInput): Promise<ScalePoolResult> {
  const { listPoolMachines } = proxyActivities<Activities>(machineStep);
  const existing = await listPoolMachines({ cluster: input.cluster, pool: input.pool });
  const progress: Record<string, { status: string }> = Object.fromEntries(existing.map((m) => [m.name, { status: m.state }]));
  setHandler(machineProgressQuery, () => progress);
  const result: ScalePoolResult = { created: [] as string[], removed: [] as string[], failed: [] as { name: string; error: string }[] };
  // 0.3.0: a machine created in a pool that services run in gets their current releases; earlier scales did not.
  const place = patched('place-services-on-new-machines');
  if (place) result.placed = [];

  const work: (() => Promise<void>)[] = [];
  if (existing.length < input.desired) {
    const taken = new Set(existing.map((m) => m.name));
    const names: string[] = [];
    for (let i = 1; names.length < input.desired - existing.length; i++) if (!taken.has(`${input.pool}-${i}`)) names.push(`${input.pool}-${i}`);
    for (const name of names) {
      progress[name] = { status: 'pending' };
      work.push(async () => {
        progress[name].status = 'provisioning';
        try {
          const { machineId } = await executeChild(provisionMachine, {
            workflowId: machineWorkflowId(input.cluster, input.pool, name),
            args: [{ cluster: input.cluster, pool: input.pool, name, idcTaskQueue: input.idcTaskQueue }],
            staticSummary: `provision ${input.cluster}/${input.pool}/${name}`,
          });
          result.created.push(name);
          if (place) {
            progress[name].status = 'placing services';
            await placeServices(input, { machineId, name }, result);
          }
          progress[name].status = 'ready';
        } catch (err) {
          progress[name].status = 'failed';
          result.failed.push({ name, error: describeFailure(err instanceof ChildWorkflowFailure ? err.cause : err) });
        }
      });
    }
  }
  // Machines still being provisioned are not surplus to take away: only ready or failed ones go.
  const settled = existing.filter((m) => m.state === 'ready' || m.state === 'failed');
  for (const m of settled.slice(Math.max(0, input.desired - (existing.length - settled.length))).reverse()) {
    work.push(async () => {
      progress[m.name].status = 'decommissioning';
      try {
        await executeChild(decommissionMachine, { workflowId: `decommission:${m.machineId}`, args: [{ machineId: m.machineId, cluster: input.cluster, idcTaskQueue: input.idcTaskQueue }], staticSummary: `decommission ${m.name}` });
        progress[m.name].status = 'destroyed';
        result.removed.push(m.name);
      } catch (err) {
        progress[m.name].status = 'failed';
        result.failed.push({ name: m.name, error: describeFailure(err instanceof ChildWorkflowFailure ? err.cause : err) });
      }
    });
  }
  await pool(work, input.maxConcurrent, (job) => job());
  return result;
}

/**
 * Starts each service of the pool at its current release on a new machine (same replicas, same health gate). A
 * service that fails there is taken off the machine again and counted among the scale's failures; the machine stays.
 */
async function placeServices(input: ScalePoolInput, machine: ServiceMachine, result: ScalePoolResult): Promise<void> {
  const { currentReleases } = proxyActivities<Activities>(activityOptions(activityTiming.serviceRecord));
  for (const { service, version, digest } of await currentReleases({ cluster: input.cluster, pool: input.pool })) {
    const { roll, clear } = serviceMachines(service, input.idcTaskQueue);
    try {
      await roll(machine, `${service.repository}:${version}`, { version, digest }, true, () => undefined);
      result.placed!.push({ machine: machine.name, service: service.name, version });
    } catch (err) {
      if (isCancellation(err)) throw err;
      const error = `${service.name} ${version} could not be placed: ${describeFailure(err)}`;
      result.failed.push({ name: machine.name, error });
      await clear(machine, version, 'unhealthy', error);
    }
  }
}

/** A machine's id in the inventory and its idempotency key at the provider: one per incarnation of a name. */
function newMachineId(cluster: string, name: string): string {
  // At most 60 characters: it is also the provider's idempotency key (EC2's ClientToken takes 64).
  return `${cluster.slice(0, 20)}.${name.slice(0, 30)}.${uuid4().slice(0, 8)}`;
}

/** One provisioning per machine name: a repeated request for the same machine joins the first. */
export function machineWorkflowId(cluster: string, pool: string, name: string): string {
  return `machine:${cluster}/${pool}/${name}`;
}

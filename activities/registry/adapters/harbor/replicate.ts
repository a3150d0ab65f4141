import { setTimeout as sleep } from 'node:timers/promises';
import type { Credentials } from '../../auth.ts';
import { RegistryClient } from '../../client.ts';
import { RegistryError } from '../../errors.ts';
import { HarborClient, isUnhealthyTarget, type HarborExecution } from './client.ts';

/** Where the image goes: a registry of berth.yaml, with its login resolved. */
export interface HarborReplicationTarget {
  name: string;
  url: string;
  /** Its kind in berth.yaml: Harbor addresses a Harbor and a plain registry differently. */
  kind: string;
  credentials?: Credentials;
}

export interface ReplicateWithHarborInput {
  /** The Harbor that holds the image and runs the replication. */
  source: HarborClient;
  target: HarborReplicationTarget;
  repository: string;
  tag: string;
  /** How long Harbor's execution may run; past that, berth stops it and fails. */
  deadlineMs: number;
  /** Cancellation: the execution is stopped on Harbor too. */
  signal?: AbortSignal;
  /** Every state of the execution berth reads, about once a second: the activity heartbeats there. */
  onPoll?: (execution: HarborExecution) => void;
  /** How long a stop may take (Harbor waits on its jobservice, which can hang); 10 s when not given. */
  stopTimeoutMs?: number;
}

export interface HarborReplicationResult {
  executionId: number;
  tasks: { total: number; succeed: number; failed: number };
  digest: string;
}

const pollEveryMs = 1000;
const finished = new Set(['Succeed', 'Failed', 'Stopped']);

/**
 * Replicates one tag with Harbor's own machinery: an endpoint for the target and a push-based manual policy on
 * the source Harbor (created once, then reused), one execution of it, awaited. Harbor reports success without
 * checking what arrived (goharbor/harbor#22644), so berth then checks that the target resolves the tag to the
 * digest the source had.
 */
export async function replicateWithHarbor(input: ReplicateWithHarborInput): Promise<HarborReplicationResult> {
  const { source, target, repository, tag, signal } = input;
  const image = `${repository}:${tag}`;
  const sourceRegistry = source.registryClient();
  const targetRegistry = new RegistryClient({ name: target.name, baseUrl: target.url, credentials: target.credentials });
  try {
    const digest = await sourceRegistry.headManifest(repository, tag, signal);
    if (!digest) throw new RegistryError('ImageNotFound', `${image} does not exist on ${source.name}`, { status: 404 });
    // A Harbor takes pushes only into an existing project: create it (private) rather than rely on the source's adapter.
    if (target.kind === 'harbor') await ensureProjectOn(target, repository.split('/')[0], signal);
    const registryId = await source
      .ensureRegistryEndpoint(
        {
          name: `berth-${target.name}`,
          url: target.url,
          type: target.kind === 'harbor' ? 'harbor' : 'docker-registry',
          credential: target.credentials && { access_key: target.credentials.username, access_secret: target.credentials.password },
          // berth.yaml has no TLS options: Harbor verifies the target's certificate.
          insecure: false,
        },
        signal,
      )
      .catch(async (err: unknown) => {
        throw isUnhealthyTarget(err) ? await unhealthyTarget(source.name, target, targetRegistry, signal) : err;
      });
    const policyId = await source.ensureReplicationPolicy({ name: `berth-${repository.replaceAll('/', '-')}-to-${target.name}`, destRegistryId: registryId, filters: { name: repository, tag }, override: true }, signal);
    const executionId = await source.startExecution(policyId, signal);
    const execution = await awaitExecution(input, executionId);
    // Harbor already retried each task (a replication job runs up to 3 times): a failed execution is final.
    if (execution.status !== 'Succeed') throw new RegistryError('RegistryRejected', await failureReport(input, execution));
    const arrived = await targetRegistry.headManifest(repository, tag, signal);
    if (arrived !== digest) {
      const found = arrived ? `resolves ${image} to ${arrived}` : `has no ${image}`;
      throw new RegistryError('DigestMismatch', `Harbor execution ${executionId} on ${source.name} reported success (${summary(execution)}), but ${target.name} ${found}, not ${digest}`);
    }
    return { executionId, tasks: { total: execution.total, succeed: execution.succeed, failed: execution.failed }, digest };
  } finally {
    await Promise.all([sourceRegistry.close(), targetRegistry.close()]);
  }
}

/**
 * Harbor refuses to save an endpoint whose target it finds unhealthy, down or refusing the credential, without
 * saying which. berth asks the target itself, from this worker, and reports what it is: a refused login fails at
 * once, a target that is down (or that only Harbor cannot reach) is retried.
 */
async function unhealthyTarget(harbor: string, target: HarborReplicationTarget, client: RegistryClient, signal?: AbortSignal): Promise<RegistryError> {
  const said = `target unhealthy: ${harbor} cannot reach ${target.name} (${target.url}) with its credential`;
  try {
    await client.ping(signal);
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    return new RegistryError(err.type, `${said}; from this worker: ${err.message}`, { ...err.opts, cause: err });
  }
  return new RegistryError('RegistryUnavailable', `${said}, although this worker reaches it with the same credential: check ${harbor}'s network path to it`);
}

async function ensureProjectOn(target: HarborReplicationTarget, project: string, signal?: AbortSignal): Promise<void> {
  const harbor = new HarborClient({ name: target.name, baseUrl: target.url, credentials: target.credentials });
  try {
    await harbor.ensureProject(project, signal);
  } finally {
    await harbor.close();
  }
}

/** Polls the execution until it ends; past the deadline, or when cancelled, stops it on Harbor. */
async function awaitExecution(input: ReplicateWithHarborInput, id: number): Promise<HarborExecution> {
  const { source, deadlineMs, signal, onPoll } = input;
  const started = Date.now();
  try {
    for (;;) {
      const execution = await source.getExecution(id, signal);
      onPoll?.(execution);
      if (finished.has(execution.status)) return execution;
      const left = started + deadlineMs - Date.now();
      if (left <= 0) {
        const stopped = await stopWithin(input, id);
        const waited = ((Date.now() - started) / 1000).toFixed(1);
        throw new RegistryError('RegistryRejected', `Harbor execution ${id} on ${source.name} was stuck: still ${execution.status} after ${waited} s (${summary(execution)}); ${stopped}`);
      }
      await sleep(Math.min(pollEveryMs, left), undefined, { signal });
    }
  } catch (err) {
    // Cancelled: leave no copy running on Harbor for nobody.
    if (signal?.aborted) await stopWithin(input, id);
    throw err;
  }
}

/**
 * Stops an execution, waiting for Harbor's answer at most `stopTimeoutMs`: Harbor answers once its jobservice
 * has stopped the tasks, and a hung jobservice would hold the activity. Says how it went.
 */
async function stopWithin({ source, stopTimeoutMs = 10_000 }: ReplicateWithHarborInput, id: number): Promise<string> {
  const bound = AbortSignal.timeout(stopTimeoutMs);
  return source.stopExecution(id, bound).then(
    () => 'berth stopped it',
    (err: Error) =>
      bound.aborted
        ? `berth asked ${source.name} to stop it and had no answer within ${(stopTimeoutMs / 1000).toFixed(1)} s (Harbor waits on its jobservice, which may hang): it may still be running`
        : `berth could not stop it: ${err.message}`,
  );
}

/** Why an execution did not succeed: its counts and, for each failed task, what it copied and its log's last line. */
async function failureReport({ source, target, repository, tag, signal }: ReplicateWithHarborInput, execution: HarborExecution): Promise<string> {
  const tasks = await source.listTasks(execution.id, undefined, signal);
  const failed = await Promise.all(
    tasks
      .filter((t) => t.status === 'Failed')
      .map(async (t) => {
        const log = await source.taskLog(execution.id, t.id, signal).catch((err: Error) => `(no log: ${err.message})`);
        // The last line says why; its end matters most.
        const last = log.trim().split('\n').pop() ?? '';
        return `task ${t.id} ${t.src_resource} -> ${t.dst_resource}: ${last.length > 500 ? `…${last.slice(-500)}` : last}`;
      }),
  );
  const status = `${execution.status}${execution.status_text ? ` (${execution.status_text})` : ''}`;
  return `Harbor execution ${execution.id} on ${source.name} replicating ${repository}:${tag} to ${target.name} ended ${status}: ${summary(execution)}${failed.map((f) => `; ${f}`).join('')}`;
}

function summary(e: HarborExecution): string {
  return `${e.total} task(s): ${e.succeed} succeeded, ${e.failed} failed, ${e.in_progress} in progress, ${e.stopped} stopped`;
}

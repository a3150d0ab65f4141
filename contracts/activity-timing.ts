import type { ActivityOptions, Duration, RetryPolicy } from '@temporalio/common';
import type { RegistryEndpoint } from './registry-endpoint.ts';

/**
 * How long an activity may run, how soon a silent one is given up on, and how it is retried. An activity that
 * heartbeats says how: on a timer every `everyMs` (the activity reads it from its own entry here, so the timer
 * and the timeout cannot drift apart), or once per unit of work (`per`).
 */
export interface ActivityTiming {
  /** Absent on the guard's probe, whose bound the workflow takes from its group's probe timeout. */
  startToCloseTimeout?: Duration;
  scheduleToCloseTimeout?: Duration;
  heartbeat?: { timeout: Duration; everyMs: number } | { timeout: Duration; per: string };
  retry: RetryPolicy;
}

/** A registry that fails answers again soon or not at all: backoff doubling to a minute. */
const registryRetry = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' } as const;
/** Provisioning's steps on the inventory and the provider. */
const machineRetry = { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 5 } as const;

/** One entry per activity, or per group of activities that truly share their timing (named in each entry). */
export const activityTiming = {
  /** resolveImage: one manifest read on the source, no heartbeats needed. */
  resolveImage: { startToCloseTimeout: '1 minute', retry: { ...registryRetry, maximumAttempts: 10 } },
  /**
   * copyImageToRegistry (a replication's copy, a sync's fix of one image): heartbeats as bytes flow and on a timer
   * while a slow registry answers (a commit of a huge blob), so a dead worker or a stalled transfer is noticed
   * within the timeout.
   */
  copyImage: { startToCloseTimeout: '2 hours', heartbeat: { timeout: '20 seconds', everyMs: 5000 }, retry: { ...registryRetry, maximumAttempts: 10 } },
  /** copyImages: a sync's batch of images, heartbeating its progress as copyImage does. */
  copyImages: { startToCloseTimeout: '12 hours', heartbeat: { timeout: '20 seconds', everyMs: 5000 }, retry: { ...registryRetry, maximumAttempts: 10 } },
  /** listRepositories, listRepositoryPage: a sync's catalog pages. */
  catalogPage: { startToCloseTimeout: '30 minutes', heartbeat: { timeout: '1 minute', per: 'page of the catalog read' }, retry: registryRetry },
  /** diffRepository, diffRepositories, deleteManifest, deleteManifests: a sync's drift pages and deletes. */
  driftPage: { startToCloseTimeout: '30 minutes', heartbeat: { timeout: '1 minute', per: 'tag compared (at most one a second)' }, retry: registryRetry },
  /** replicateViaHarbor: runs until the rule's Harbor deadline, plus this much (in ms) to stop the execution. */
  harborReplication: { startToCloseTimeout: 120_000, heartbeat: { timeout: '30 seconds', per: 'poll of the Harbor execution (about a second)' }, retry: registryRetry },

  /** probeRegistries from a vantage point: once; its bound comes from the group's probe timeout. */
  guardProbe: { retry: { maximumAttempts: 1 } },
  /** readEndpoint: the guard asks again later when the endpoint's worker is down for a while. */
  readEndpoint: { startToCloseTimeout: '20 seconds', scheduleToCloseTimeout: '1 minute', retry: { initialInterval: '1 second', maximumInterval: '10 seconds' } },
  /**
   * The steps of a failover and a failback, and the guard's fenceSyncRules: fenceSyncRules, switchEndpoint,
   * verifyEndpointPull, pushedRepositories, a failback's probeRegistries and fenceRegistry (berth 0.1's failover
   * fenced with these too).
   */
  failoverStep: { startToCloseTimeout: '1 minute', retry: { initialInterval: '1 second', maximumAttempts: 3 } },
  /** fenceRegistry in a failover: a dead Harbor must not hold the switch up; one quick retry, then it is recorded. */
  fenceRegistry: { startToCloseTimeout: '20 seconds', retry: { initialInterval: '1 second', maximumAttempts: 2 } },
  /** measureRpo: reads a large registry for at most 10 minutes (activities/ha.ts). */
  measureRpo: { startToCloseTimeout: '15 minutes', heartbeat: { timeout: '30 seconds', per: 'tag compared' }, retry: { initialInterval: '1 second', maximumAttempts: 2 } },

  /**
   * reserveMachine, createMachine, adoptMachine, pinMachineHostKey, setMachineState, listPoolMachines (and berth
   * 0.1's destroyMachine): provisioning's steps on the inventory and the provider.
   */
  machineStep: { startToCloseTimeout: '2 minutes', retry: machineRetry },
  /** waitMachineRunning: polls the provider, a heartbeat each poll. */
  waitMachineRunning: { startToCloseTimeout: '10 minutes', heartbeat: { timeout: '20 seconds', everyMs: 1000 }, retry: machineRetry },
  /** waitForSsh: a heartbeat per connection attempt (a second apart). */
  waitForSsh: { startToCloseTimeout: '5 minutes', heartbeat: { timeout: '30 seconds', per: 'connection attempt' }, retry: machineRetry },
  /** initMachine: a heartbeat per step done and on a timer while a step runs. */
  initMachine: { startToCloseTimeout: '20 minutes', heartbeat: { timeout: '30 seconds', everyMs: 5000 }, retry: { ...machineRetry, maximumAttempts: 3 } },
  /**
   * destroyMachine, destroyOrphanMachine: retried until the machine is gone, no attempt limit, backoff to minutes,
   * heartbeats while the provider is asked (a provider down for an hour delays it; nothing gives up on it).
   */
  destroyMachine: { startToCloseTimeout: '5 minutes', heartbeat: { timeout: '30 seconds', everyMs: 5000 }, retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '2 minutes' } },
  /** compareWithProvider, inspectOrphan: the provider's list held against the inventory; heartbeats while it answers. */
  inspectProvider: { startToCloseTimeout: '10 minutes', heartbeat: { timeout: '1 minute', everyMs: 5000 }, retry: { initialInterval: '1 second', maximumInterval: '1 minute', maximumAttempts: 5 } },

  /** recordRelease, finishRelease, recordServiceMachine, currentReleases, and listPoolMachines as a deploy reads its pool. */
  serviceRecord: { startToCloseTimeout: '1 minute', retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 5 } },
  /**
   * listServiceContainers, pullServiceImage, startServiceReplica, checkReplicaHealth, removeServiceContainers: a
   * service's containers on a machine's engine, heartbeating on a timer while the engine works (a pull, a slow
   * stop); each call sets its own start-to-close (a pull takes longer than a list). A lost worker is noticed within
   * the timeout and the retry finds the containers where the lost attempt left them (their names say replica and
   * version).
   */
  serviceContainers: { startToCloseTimeout: '2 minutes', heartbeat: { timeout: '30 seconds', everyMs: 5000 }, retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 5 } },
  /** drainServices: a decommissioned machine's service containers stopped before it is destroyed; few attempts, the destroy takes them anyway. */
  drainServices: { startToCloseTimeout: '5 minutes', heartbeat: { timeout: '30 seconds', everyMs: 5000 }, retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 3 } },
} as const satisfies Record<string, ActivityTiming>;

/** What proxyActivities takes for an entry, with where it runs and, when the caller sets them, its attempts. */
export function activityOptions({ heartbeat, retry, ...timeouts }: ActivityTiming, { maximumAttempts, ...extra }: Omit<ActivityOptions, 'retry' | 'heartbeatTimeout'> & { maximumAttempts?: number } = {}): ActivityOptions {
  return {
    ...timeouts,
    ...(heartbeat ? { heartbeatTimeout: heartbeat.timeout } : {}),
    retry: maximumAttempts === undefined ? retry : { ...retry, maximumAttempts },
    ...extra,
  };
}

/** resolveImage on an image's source registry, in that registry's IDC. */
export function resolveOptions(image: string, source: RegistryEndpoint): ActivityOptions {
  return activityOptions(activityTiming.resolveImage, { taskQueue: source.taskQueue, summary: `resolve ${image} on ${source.idc}` });
}

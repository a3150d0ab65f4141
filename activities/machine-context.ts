import { ApplicationFailure, Context } from '@temporalio/activity';
import type { BerthConfig } from '../config/load.ts';
import { ClassifiedError } from '../contracts/classified-error.ts';
import { cloudProviders } from './cloud/index.ts';
import { ProviderError, type CloudProvider } from './cloud/provider.ts';
import { installationId, openInventory, type Inventory } from '../inventory/index.ts';

/**
 * What the machine activities of a worker share: one inventory connection and one provider per cluster, both made
 * on first use (an attempt that fails to open them leaves the next attempt free to try again).
 */
export function machineContext(config: BerthConfig) {
  let opened: Promise<Inventory> | undefined;
  const inventory = () =>
    (opened ??= openInventory(config.inventory).catch((err) => {
      opened = undefined;
      throw err;
    }));
  let providers: Promise<(cluster: string) => CloudProvider> | undefined;
  const providerOf = async (cluster: string) =>
    (
      await (providers ??= inventory()
        .then(async (db) => cloudProviders(config, db, await installationId(db)))
        .catch((err) => {
          providers = undefined;
          throw err;
        }))
    )(cluster);
  const clusterOf = (name: string) => {
    const cluster = config.clusters.find((c) => c.name === name);
    if (!cluster) throw ApplicationFailure.nonRetryable(`cluster "${name}" is not in this worker's config`, 'UnknownCluster');
    return cluster;
  };
  return { config, inventory, providerOf, clusterOf };
}

export type MachineContext = ReturnType<typeof machineContext>;

/**
 * Runs a provider call, heartbeating while it lasts: a worker that dies mid-call is noticed by the heartbeat
 * timeout, a call that hangs by the start-to-close timeout, and a cancellation reaches the activity.
 */
export async function heartbeating<T>(everyMs: number, call: () => Promise<T>, detail?: unknown): Promise<T> {
  const ctx = Context.current();
  const timer = setInterval(() => ctx.heartbeat(detail), everyMs);
  try {
    return await call();
  } finally {
    clearInterval(timer);
  }
}

/** A provider's failure of any kind, marked worth another try: asTemporalFailure makes it a retryable failure. */
class WorthRetrying extends ClassifiedError {
  override get retryable(): boolean {
    return true;
  }
}

/**
 * For destroys: every failure at the provider is worth another try, whatever its kind (an engine that is down, an
 * API that refuses until an operator fixes a permission), so the workflow retries until the machine is gone.
 * `onFailure` sees each one first.
 */
export async function retryingAtProvider<T>(call: () => Promise<T>, onFailure?: (err: ProviderError) => Promise<void>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!(err instanceof ProviderError)) throw err;
    await onFailure?.(err);
    throw new WorthRetrying(err.type, err.message);
  }
}

import type { RegistryKind } from '../kind.ts';

/** Harbor: its own replication (policies and executions) and a read-only mode berth uses as the fence. */
export const harborKind = { name: 'harbor', replicates: true, readOnlyFence: true } as const satisfies RegistryKind;

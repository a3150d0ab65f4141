import type { RegistryKind } from '../kind.ts';

/** A plain OCI distribution registry (docker-registry, CNCF Distribution, Docker Hub). */
export const distributionKind = { name: 'distribution', replicates: false, readOnlyFence: false } as const satisfies RegistryKind;

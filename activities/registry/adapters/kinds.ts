import { distributionKind } from './distribution/kind.ts';
import { harborKind } from './harbor/kind.ts';
import type { RegistryKind } from './kind.ts';

/** The registry kinds berth knows, by name: their facts (the adapters are in adapters.ts). The first is the default. */
export const registryKinds = [distributionKind, harborKind] as const;

export type RegistryKindName = (typeof registryKinds)[number]['name'];

export const registryKindNames = registryKinds.map((k) => k.name) as [RegistryKindName, ...RegistryKindName[]];

/** The facts of a kind berth.yaml has already checked. */
export function registryKind(name: string): RegistryKind {
  const kind = registryKinds.find((k) => k.name === name);
  if (!kind) throw new Error(`unknown registry kind "${name}"`);
  return kind;
}

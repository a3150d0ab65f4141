/**
 * What berth.yaml, planning and the workflows' plans know of a registry kind: facts only, no I/O, so that config
 * and planning may import them (a kind's runtime adapter is in its folder's adapter.ts).
 */
export interface RegistryKind {
  /** How berth.yaml names the kind (`kind:` of a registry). */
  name: string;
  /** It replicates images to other registries by itself: a sync rule in mode harbor hands its copies to it. */
  replicates: boolean;
  /** It has a fence of its own (writes refused); without one, it is fenced by leaving the HA group's endpoint. */
  readOnlyFence: boolean;
}

// Every workflow the main worker runs. Workflow code is deterministic: no I/O, no Node built-ins.
export { replicateImage } from './replicate-image.ts';
export { distributeImage } from './distribute-image.ts';
export { syncRegistries, syncRepositories } from './sync-registries.ts';
export { failback, failover, registryGuard } from './registry-guard.ts';
export { decommissionMachine, provisionMachine, scalePool } from './provision-machine.ts';
export { adoptOrphan, destroyOrphan, reconcileInventory } from './reconcile-inventory.ts';
export { deployService } from './deploy-service.ts';

// The inventory's query layer: callers use these functions, never SQL of their own.
export { inventoryDialect, openInventory, type Inventory, type InventoryTarget } from './db.ts';
export { InventoryError, type InventoryErrorType } from './errors.ts';
export { machineStates, type MachineState } from './tables.ts';
export { installationId } from './installation.ts';
export {
  findMachine,
  findMachineByProviderId,
  getMachine,
  listMachines,
  machineEvents,
  pinHostKey,
  recordMachine,
  recordMachineEvent,
  transitionMachine,
  type MachineFilter,
  type MachineRecord,
  type NewMachine,
  type Transition,
} from './machines.ts';
export { listPools, setPoolDesired, type PoolRecord } from './pools.ts';
export { costs, hoursPerMonth, projectedMonthlyCost, type CostQuery, type CostRow } from './costs.ts';
export { allocate, allocationHeldBy, findAllocation, labelAllocation, listAllocations, release, type Allocation } from './allocations.ts';
export { finishRelease, listReleases, listServiceMachines, recordRelease, setServiceMachine, type NewRelease, type ReleaseRecord, type ServiceMachineRecord } from './services.ts';
export { releaseOutcomes, type ReleaseOutcome } from './tables.ts';

/**
 * What the inventory refuses. None of these is fixed by a retry: the activity layer turns them into non-retryable
 * Temporal failures of the same type.
 */
export type InventoryErrorType =
  | 'UnknownMachine' // no machine with that id
  | 'NameTaken' // the cluster has a live machine of that name under another id
  | 'InvalidTransition' // e.g. a destroyed machine cannot become ready
  | 'HostKeyMismatch'; // the machine offered another SSH host key than the one pinned on first contact

export class InventoryError extends Error {
  constructor(
    readonly type: InventoryErrorType,
    message: string,
  ) {
    super(message);
    this.name = type;
  }
}

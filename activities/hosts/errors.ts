/**
 * What went wrong with a host, classified by what a retry can do about it; the activity layer turns
 * `retryable: false` into a non-retryable Temporal failure of the same type.
 */
export type HostErrorType =
  | 'HostUnreachable' // refused, timed out, or the connection dropped: the machine may still be booting
  | 'CommandTimeout' // a command outlived its timeout; every step is idempotent, so running the profile again is safe
  | 'SshAuthFailed' // the host refuses the key: a wrong key reference, or a machine made with another key
  | 'HostKeyMismatch' // another key than the one recorded on first contact: another machine, or an interceptor
  | 'CommandFailed' // a command exited non-zero
  | 'InitStepFailed' // an init step failed: which one, and the command's stderr
  | 'SecretUnavailable' // the private key reference does not resolve on this worker
  | 'EngineUnavailable' // SSH lets berth in, but the machine's Docker engine does not answer (yet)
  | 'MachineNotReady'; // no engine to reach: the machine is not provisioned yet, or destroyed

export class HostError extends Error {
  constructor(
    readonly type: HostErrorType,
    message: string,
    readonly opts: { step?: string; stderr?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = type;
  }

  get retryable(): boolean {
    return this.type === 'HostUnreachable' || this.type === 'CommandTimeout' || this.type === 'EngineUnavailable';
  }
}

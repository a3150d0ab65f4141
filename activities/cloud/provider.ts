import { z } from 'zod';
import type { BerthConfig, ProviderConfig } from '../../config/schema.ts';
import { ClassifiedError } from '../../contracts/classified-error.ts';

/**
 * One interface for every place machines come from (Docker Machine's drivers and Harbor's adapters are the model):
 * a provider is constructed from its cluster's `provider` config and knows nothing of workflows, inventory or SSH.
 * Adding a provider is one folder under activities/cloud/ and one line in the registry of providers.
 */
export interface CloudProvider {
  readonly kind: ProviderConfig['kind'];
  /**
   * Makes the machine, or finds the one an earlier call with the same `idempotencyKey` made: the same request
   * never makes two machines (a retry after a lost answer, a replayed activity). Returns as soon as the provider
   * has accepted it; the machine may still be `pending`.
   */
  create(spec: MachineSpec): Promise<CreatedMachine>;
  /**
   * The machines an earlier `create` with this key made that the provider still holds: how compensation finds a
   * machine whose create never answered (the answer was lost, or a step after the provider accepted it failed).
   * Normally one; a provider that does not honour the key may have made more, and all of them are the key's.
   */
  findByKey(idempotencyKey: string): Promise<Machine[]>;
  /**
   * Every machine of this provider's cluster that the provider still holds, with the reserved tags (docker: its
   * containers in any state, labels only; static: the allocated hosts; aws: the instances not terminated, by tag):
   * what reconciliation holds against the inventory.
   */
  list(): Promise<Machine[]>;
  /** What the provider says now. A machine it no longer knows (removed, long terminated) is `terminated`. */
  describe(id: string): Promise<Machine>;
  /** Ends the machine; a machine already gone is not an error. */
  destroy(id: string): Promise<void>;
  /** Adds or overwrites tags (keys outside the reserved `berth:` prefix); tags not named are kept. */
  tag(id: string, tags: Record<string, string>): Promise<void>;
  /** The hourly price of an instance type, from the rate card (`rateCard[kind][instanceType]`). */
  hourlyPrice(instanceType: string): number;
}

/** What a provider needs besides its own config section. */
export interface ProviderContext {
  cluster: string;
  rateCard: BerthConfig['rateCard'];
  /** The berth installation (one per inventory) whose machines this provider makes: tagged on each. */
  installation: string;
}

/** How the registry of providers builds one from its config section. */
export type ProviderFactory<K extends ProviderConfig['kind']> = (config: Extract<ProviderConfig, { kind: K }>, context: ProviderContext) => CloudProvider;

export type MachineState = 'pending' | 'running' | 'stopped' | 'terminated';

export interface Machine {
  /** The provider's own id: a container id, an EC2 instance id, a static host's name. */
  id: string;
  state: MachineState;
  /** Where SSH reaches the machine; unknown while it is pending. */
  address?: string;
  sshPort?: number;
  instanceType?: string;
  /** When the provider made (or, static, allocated) it, ISO 8601; what an orphan has cost since. */
  createdAt?: string;
  /** Every tag, including the reserved `berth:` ones the provider set at create. */
  tags: Record<string, string>;
}

export interface CreatedMachine extends Machine {
  /** false when the idempotency key found a machine an earlier call made. */
  created: boolean;
}

/** Tags every provider puts on the machines it makes: how berth finds them again without a state file. */
export const reservedTags = {
  cluster: 'berth:cluster',
  pool: 'berth:pool',
  name: 'berth:name',
  idempotencyKey: 'berth:idempotency-key',
  /** The installation (inventory) that made the machine: another one's machines are not this one's to explain. */
  installation: 'berth:installation',
} as const;

const resourceName = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be lowercase letters, digits and dashes (1-63 chars)');

// The strictest of the clouds decides: EC2 tag keys are at most 128 characters, values 256.
export const machineTagsSchema = z.record(
  z
    .string()
    .regex(/^[A-Za-z0-9_.:/=+@ -]{1,128}$/, 'must be 1-128 letters, digits, spaces or _.:/=+@-')
    .refine((k) => !k.startsWith('berth:'), { error: 'the berth: prefix is reserved for the tags berth sets itself' }),
  z.string().max(256),
);

/** A machine request; validated where it enters the activity layer, before any provider sees it. */
export const machineSpecSchema = z
  .object({
    cluster: resourceName,
    pool: resourceName,
    /** Unique within the cluster; it becomes the container name, the hostname default, the EC2 Name tag. */
    name: resourceName,
    instanceType: z.string().min(1),
    /** The same key never makes a second machine. Fits EC2's ClientToken: 1-64 printable ASCII characters. */
    idempotencyKey: z.string().regex(/^[A-Za-z0-9._:/-]{1,64}$/, 'must be 1-64 letters, digits or ._:/-'),
    tags: machineTagsSchema.default({}),
    /** The login the key is installed for (created with passwordless sudo when not root, as cloud-init does). */
    sshUser: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a Unix user name')
      .default('root'),
    /** Installed for `sshUser` at create (the private half stays a reference in config). */
    sshPublicKey: z.string().regex(/^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$/, 'must be an OpenSSH public key line'),
  })
  .strict();

export type MachineSpec = z.infer<typeof machineSpecSchema>;

/** The tags a provider sets at create: the caller's, and the reserved ones that find the machine again. */
export function createTags(spec: MachineSpec, installation: string): Record<string, string> {
  return {
    ...spec.tags,
    [reservedTags.cluster]: spec.cluster,
    [reservedTags.pool]: spec.pool,
    [reservedTags.name]: spec.name,
    [reservedTags.idempotencyKey]: spec.idempotencyKey,
    [reservedTags.installation]: installation,
  };
}

/** Who made a machine, as its installation tag says: for messages about machines the inventory does not know. */
export function madeBy(machine: Machine): string {
  const installation = machine.tags[reservedTags.installation];
  return installation ? `berth installation ${installation}` : 'no berth installation';
}

/** The rate card's price; config validation already refuses pools whose instance type has none. */
export function rateCardPrice(rateCard: BerthConfig['rateCard'], kind: ProviderConfig['kind'], instanceType: string): number {
  const price = rateCard[kind]?.[instanceType];
  if (price === undefined) throw new ProviderError('ProviderRejected', `no price for ${kind} ${instanceType} in rateCard`);
  return price;
}

/**
 * What went wrong talking to a provider, classified by what a retry can do about it; the activity layer turns
 * `retryable: false` into a non-retryable Temporal failure of the same type.
 */
export type ProviderErrorType =
  | 'ProviderUnavailable' // the engine or API is unreachable, throttles, or fails on its side: worth retrying
  | 'ProviderRejected' // the request as made is refused (bad image, quota, permissions): a retry will not help
  | 'NoCapacity' // nothing left to allocate (a static pool with every host taken)
  | 'NameClash' // another machine, made by no request with this key, already holds the name at the provider
  | 'MachineNotFound'; // tag on a machine the provider does not know

export class ProviderError extends ClassifiedError<ProviderErrorType> {
  constructor(
    type: ProviderErrorType,
    message: string,
    /** holder: with NameClash, the machine that holds the name. */
    readonly opts: { retryAfterMs?: number; cause?: unknown; holder?: Machine } = {},
  ) {
    super(type, message, { cause: opts.cause });
  }

  override get retryable(): boolean {
    return this.type === 'ProviderUnavailable';
  }

  override get retryAfterMs(): number | undefined {
    return this.opts.retryAfterMs;
  }
}

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type Payload, type PayloadCodec, type SerializationContext } from '@temporalio/common';
import proto from '@temporalio/proto';
import type { WorkflowProjects } from './workflow-projects.ts';

const { Payload: PayloadMessage } = proto.temporal.api.common.v1;

const ENCODING = 'binary/encrypted';
const KEY_ID = 'encryption-key-id';
/** The project a payload belongs to, in clear for the codec endpoint; bound to the ciphertext (GCM's additional data). */
const PROJECT = 'berth-project';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

const text = (payload: Payload, key: string) => Buffer.from(payload.metadata?.[key] ?? []).toString();

/** The project an encrypted payload is labelled with; none for payloads of no known project (and before 0.2.0). */
export function payloadProject(payload: Payload): string | undefined {
  return text(payload, PROJECT) || undefined;
}

export function isEncrypted(payload: Payload): boolean {
  return text(payload, METADATA_ENCODING_KEY) === ENCODING;
}

/**
 * Encrypts every payload berth writes to Temporal with AES-256-GCM under the current key, and names the key in the
 * payload's metadata. Decoding picks the key by that name, so histories written under an older key still read
 * after a rotation, as long as the old key stays configured.
 *
 * Each payload also carries the project of the workflow it belongs to (from the serialization context and
 * `projects`), in clear, as additional authenticated data: a label changed or removed fails decryption, so nobody
 * can move a payload into a project without the key.
 */
export class AesGcmCodec implements PayloadCodec {
  constructor(
    private readonly keys: ReadonlyMap<string, Buffer>,
    private readonly currentKeyId: string,
    private readonly projects?: WorkflowProjects,
  ) {
    for (const [id, key] of keys) if (key.length !== 32) throw new Error(`encryption key "${id}" must be 32 bytes (AES-256), is ${key.length}`);
    if (!keys.has(currentKeyId)) throw new Error(`the current encryption key "${currentKeyId}" is not among the keys`);
  }

  async encode(payloads: Payload[], context?: SerializationContext): Promise<Payload[]> {
    const key = this.keys.get(this.currentKeyId)!;
    const project = this.projects?.of(context?.workflowId);
    return payloads.map((payload) => {
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      if (project) cipher.setAAD(additionalData(project));
      const plain = PayloadMessage.encode(payload).finish();
      const data = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      const metadata = { [METADATA_ENCODING_KEY]: Buffer.from(ENCODING), [KEY_ID]: Buffer.from(this.currentKeyId) };
      return { metadata: project ? { ...metadata, [PROJECT]: Buffer.from(project) } : metadata, data };
    });
  }

  async decode(payloads: Payload[], context?: SerializationContext): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (!isEncrypted(payload)) return payload;
      const keyId = text(payload, KEY_ID);
      const key = this.keys.get(keyId);
      if (!key) throw new Error(`payload encrypted with key "${keyId}", which is not configured`);
      const data = Buffer.from(payload.data ?? []);
      if (data.length < NONCE_BYTES + TAG_BYTES) throw new Error(`encrypted payload of ${data.length} bytes is too short to be one`);
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, NONCE_BYTES), { authTagLength: TAG_BYTES });
      const project = payloadProject(payload);
      if (project) decipher.setAAD(additionalData(project));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      // Authentic, so the label is true: what this process encrypts for the same workflow gets it too.
      if (project && context?.workflowId) this.projects?.remember(context.workflowId, project);
      return PayloadMessage.decode(plain);
    });
  }
}

function additionalData(project: string): Buffer {
  return Buffer.from(`${PROJECT}:${project}`);
}

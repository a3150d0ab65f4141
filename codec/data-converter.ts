import type { DataConverter } from '@temporalio/common';
import type { BerthConfig } from '../config/load.ts';
import { readSecret } from '../config/secrets.ts';
import { AesGcmCodec } from './aes-gcm-codec.ts';

/** The payload codec of berth.yaml's `encryption`, or none when it is not configured. */
export function payloadCodec(config: BerthConfig): AesGcmCodec | undefined {
  const encryption = config.encryption;
  if (!encryption) return undefined;
  const keys = new Map(encryption.keys.map((k) => [k.id, Buffer.from(readSecret(k.key, `encryption key ${k.id}`).trim(), 'base64')]));
  return new AesGcmCodec(keys, encryption.currentKey);
}

/** What every client and worker of berth passes to Temporal: payloads encrypted when berth.yaml says so. */
export function dataConverter(config: BerthConfig): DataConverter {
  const codec = payloadCodec(config);
  return codec ? { payloadCodecs: [codec] } : {};
}

import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { RegistryError } from './errors.ts';
import type { BlobRef } from './client.ts';

/**
 * Passes a blob through while hashing it. At the end it fails the stream if the bytes do not match the expected
 * digest and size, which aborts the upload it feeds before the registry commits anything.
 *
 * A stream that starts at `offset` (a resumed upload) cannot be hashed whole here: then only its length is
 * checked, and the digest is checked by the registry, which refuses to commit content that does not match.
 */
export class DigestVerifier extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private bytes = 0;

  constructor(
    private readonly expected: BlobRef,
    private readonly offset: number,
    private readonly onBytes: (n: number) => void = () => undefined,
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes(chunk.length);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const digest = `sha256:${this.hash.digest('hex')}`;
    if (this.offset === 0 && digest !== this.expected.digest) {
      done(new RegistryError('DigestMismatch', `blob ${this.expected.digest} arrived as ${digest} (${this.bytes} bytes): content corrupted`));
    } else if (this.offset + this.bytes !== this.expected.size) {
      done(new RegistryError('DigestMismatch', `blob ${this.expected.digest} is ${this.offset + this.bytes} bytes, its descriptor says ${this.expected.size}`));
    } else {
      done();
    }
  }
}

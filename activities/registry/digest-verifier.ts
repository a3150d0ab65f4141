import { createHash, type Hash } from 'node:crypto';
import { RegistryError } from './errors.ts';
import type { BlobRef } from './client.ts';
import type { ChunkStream } from './http.ts';

/**
 * Passes a blob through while hashing it. The check comes before the last byte is passed on: content that does not
 * match the expected digest and size fails the stream while the upload it feeds is still short of its declared
 * length, so the registry commits nothing.
 *
 * A stream that starts at `offset` (a resumed upload) cannot be hashed whole here: then only its length is
 * checked, and the digest is checked by the registry, which refuses to commit content that does not match.
 */
export class DigestVerifier implements ChunkStream {
  private readonly hash: Hash | undefined;
  private bytes = 0;

  constructor(
    private readonly source: ChunkStream,
    private readonly expected: BlobRef,
    private readonly offset: number,
    private readonly onBytes: (n: number) => void = () => undefined,
  ) {
    this.hash = offset === 0 ? createHash('sha256') : undefined;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    const { size } = this.expected;
    for await (const chunk of this.source) {
      this.bytes += chunk.length;
      if (this.offset + this.bytes > size) throw this.wrongSize();
      this.hash?.update(chunk);
      if (this.offset + this.bytes === size) this.check();
      this.onBytes(chunk.length);
      yield chunk;
    }
    if (this.offset + this.bytes !== size) throw this.wrongSize();
    if (size === 0) this.check();
  }

  destroy(err?: Error): void {
    this.source.destroy(err);
  }

  private check(): void {
    if (!this.hash) return;
    const digest = `sha256:${this.hash.digest('hex')}`;
    if (digest !== this.expected.digest) {
      throw new RegistryError('DigestMismatch', `blob ${this.expected.digest} arrived as ${digest} (${this.bytes} bytes): content corrupted`);
    }
  }

  private wrongSize(): RegistryError {
    const more = this.offset + this.bytes > this.expected.size ? 'more than ' : '';
    const seen = more ? this.expected.size : this.offset + this.bytes;
    return new RegistryError('DigestMismatch', `blob ${this.expected.digest} is ${more}${seen} bytes, its descriptor says ${this.expected.size}`);
  }
}

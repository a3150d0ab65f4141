/**
 * Read buffers that are used again and again. A socket that reads a blob into fresh memory for every read makes the
 * process allocate (and the garbage collector free) as many bytes as it copies; reusing a few buffers per transfer
 * halves the CPU a copy needs. A buffer goes back to the pool when its last holder releases it: the socket that
 * filled it, the body that queues a slice of it, the upload that has not yet written that slice.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly size: number,
    /** Free buffers kept beyond this many are left to the garbage collector. */
    private readonly keep: number,
  ) {}

  /** A buffer held once, by the caller. */
  take(): Buffer {
    const buf = this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
    holds.set(buf.buffer, { refs: 1, pool: this, buf });
    return buf;
  }

  /** @internal */
  giveBack(buf: Buffer): void {
    holds.delete(buf.buffer);
    if (this.free.length < this.keep) this.free.push(buf);
  }
}

const holds = new WeakMap<ArrayBufferLike, { refs: number; pool: BufferPool; buf: Buffer }>();

/** Keeps the pooled buffer under `chunk` from being reused until a matching `release`; other memory is unaffected. */
export function retain(chunk: Uint8Array): void {
  const hold = holds.get(chunk.buffer);
  if (hold) hold.refs++;
}

export function release(chunk: Uint8Array): void {
  const hold = holds.get(chunk.buffer);
  if (hold && --hold.refs === 0) hold.pool.giveBack(hold.buf);
}

/** Buffers blob bodies are read into: large enough that a read rarely fills one. */
export const readBuffers = new BufferPool(256 * 1024, 64);

/**
 * Memory that sockets read into, used again and again. A socket that reads a blob into fresh memory for every read
 * makes the process allocate (and the garbage collector free) as many bytes as it copies; reusing a few slabs per
 * transfer halves the CPU a copy needs. Each connection reads into the free end of its current slab, so small
 * reads (TLS records, loopback segments) pack densely; a slab goes back to the pool when its last holder releases
 * it: the socket reading into it, the bodies queueing slices of it, the uploads that have not yet written them.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    readonly slabSize: number,
    /** A read gets at least this much room; a slab with less left is replaced. */
    readonly minRead: number,
    /** Free slabs kept beyond this many are left to the garbage collector. */
    private readonly keep: number,
  ) {}

  /** A slab held once, by the caller. */
  private take(): Buffer {
    const slab = this.free.pop() ?? Buffer.allocUnsafeSlow(this.slabSize);
    holds.set(slab.buffer, { refs: 1, pool: this, slab });
    return slab;
  }

  /** @internal */
  giveBack(slab: Buffer): void {
    holds.delete(slab.buffer);
    if (this.free.length < this.keep) this.free.push(slab);
  }

  /**
   * Room for one socket's reads: `room()` is where the next read goes, held until the read is done with;
   * `filled(n)` says how much of it the read used, so the next room starts after it; `close()` when the socket
   * closed, with a room handed out that no read will fill.
   */
  reader(): { room(): Buffer; filled(n: number): void; close(): void } {
    let slab: Buffer | undefined;
    let offset = 0;
    let pending = false;
    return {
      room: () => {
        if (!slab || slab.length - offset < this.minRead) {
          if (slab) release(slab); // the reader's own hold: slices still queued keep the slab
          [slab, offset] = [this.take(), 0];
        }
        retain(slab);
        pending = true;
        return slab.subarray(offset);
      },
      filled: (n) => {
        offset += n;
        pending = false;
      },
      close: () => {
        if (slab && pending) release(slab);
        if (slab) release(slab);
        slab = undefined;
      },
    };
  }
}

const holds = new WeakMap<ArrayBufferLike, { refs: number; pool: BufferPool; slab: Buffer }>();

/** Keeps the pooled slab under `chunk` from being reused until a matching `release`; other memory is unaffected. */
export function retain(chunk: Uint8Array): void {
  const hold = holds.get(chunk.buffer);
  if (hold) hold.refs++;
}

export function release(chunk: Uint8Array): void {
  const hold = holds.get(chunk.buffer);
  if (hold && --hold.refs === 0) hold.pool.giveBack(hold.slab);
}

/** Slabs blob bodies are read into. */
export const readBuffers = new BufferPool(1 << 20, 64 << 10, 32);

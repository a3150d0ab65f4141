import { setTimeout as sleep } from 'node:timers/promises';
import type { ChunkStream } from './http.ts';

/**
 * A token bucket: `rate` tokens per second, at most one second's worth banked. Shared by everything that should
 * count against one limit (all requests to a registry, all blob bytes over a link) in this worker.
 */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(readonly rate: number) {
    this.tokens = rate;
  }

  /** Waits until `n` tokens are available and takes them; callers are served in order. */
  take(n: number, signal?: AbortSignal): Promise<void> {
    const turn = this.queue.then(async () => {
      const now = Date.now();
      this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
      this.tokens -= n;
      // In debt: wait until the debt is paid off (a chunk larger than the bucket simply waits longer).
      if (this.tokens < 0) await sleep((-this.tokens / this.rate) * 1000, undefined, { signal });
    });
    this.queue = turn.catch(() => undefined);
    return turn;
  }
}

const buckets = new Map<string, TokenBucket>();

/** The worker-wide bucket for a limit: the same key and rate share one. */
export function sharedBucket(key: string, rate: number): TokenBucket {
  const id = `${key}@${rate}`;
  let bucket = buckets.get(id);
  if (!bucket) buckets.set(id, (bucket = new TokenBucket(rate)));
  return bucket;
}

/** Passes a stream through at the bucket's rate: the next chunk is read once this one's tokens are paid. */
export function throttled(source: ChunkStream, bucket: TokenBucket, signal?: AbortSignal): ChunkStream {
  return {
    async *[Symbol.asyncIterator]() {
      for await (const chunk of source) {
        await bucket.take(chunk.length, signal);
        yield chunk;
      }
    },
    destroy: (err) => source.destroy(err),
  };
}

// WAN uplinks for benchmarks: one TCP proxy per registry stands for that registry's link to the other IDCs, so
// every byte in or out of the registry crosses it. Each direction is one queue at a fixed rate shared by all
// connections (a token bucket without burst allowance), and each chunk arrives half an RTT after it left; a
// new connection costs one RTT (the handshake). TCP's window is not modelled: one connection can fill a link.
// The proxies are user space rather than network namespaces with tc: they need no privileges and count the bytes
// of each link exactly, headers included. They run in a process of their own, so the pacing does not compete for
// an event loop with berth's worker.
import { fork } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

export interface LinkSpec {
  bytesPerSecond: number;
  rttMs: number;
}

/** What a registry's link carried: bytes out of the registry (egress) and into it (ingress). */
export interface LinkBytes {
  egress: number;
  ingress: number;
}

export interface WanLinks {
  /** The URL of each registry seen across its link: what everyone must use. */
  urls: Record<string, string>;
  /** Bytes over each registry's link since the previous call. */
  take(): Promise<Record<string, LinkBytes>>;
  close(): Promise<void>;
}

const queueMs = 50;

/** One direction of a link. Chunks are serialized one after another, whichever connection they belong to. */
class Wire {
  bytes = 0;
  private free = 0;

  constructor(
    private readonly bytesPerMs: number,
    private readonly delayMs: number,
  ) {}

  /**
   * Carries one connection's bytes. The next chunk is taken once the wire's queue is down to `queueMs` of
   * sending, so what the proxy holds is that queue plus what is in flight (rate x delay), never a whole blob; the
   * queue keeps the wire busy even when a timer fires late (timers have a resolution of 1 ms).
   */
  carry(): Transform {
    const inFlight: { at: number; chunk: Buffer }[] = [];
    let timer: NodeJS.Timeout | undefined;
    let flushed: (() => void) | undefined;
    // One timer per connection delivers in order: timers of different lengths may fire out of order.
    const deliver = () => {
      timer = undefined;
      while (inFlight.length > 0 && inFlight[0].at <= performance.now()) stream.push(inFlight.shift()!.chunk);
      if (inFlight.length > 0) timer = setTimeout(deliver, inFlight[0].at - performance.now());
      else flushed?.();
    };
    const stream = new Transform({
      transform: (chunk: Buffer, _e, done) => {
        this.bytes += chunk.length;
        this.free = Math.max(performance.now(), this.free) + chunk.length / this.bytesPerMs;
        inFlight.push({ at: this.free + this.delayMs, chunk });
        timer ??= setTimeout(deliver, inFlight[0].at - performance.now());
        setTimeout(done, this.free - performance.now() - queueMs);
      },
      flush: (done) => (inFlight.length > 0 ? (flushed = done) : done()),
      destroy: (err, done) => {
        clearTimeout(timer);
        done(err);
      },
    });
    return stream;
  }
}

async function serveLink(target: URL, spec: LinkSpec): Promise<{ url: string; egress: Wire; ingress: Wire }> {
  const bytesPerMs = spec.bytesPerSecond / 1000;
  const egress = new Wire(bytesPerMs, spec.rttMs / 2);
  const ingress = new Wire(bytesPerMs, spec.rttMs / 2);
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    client.on('error', () => client.destroy());
    setTimeout(() => {
      const upstream = connect({ host: target.hostname, port: Number(target.port), allowHalfOpen: true, noDelay: true });
      const cut = () => {
        client.destroy();
        upstream.destroy();
      };
      pipeline(client, ingress.carry(), upstream).catch(cut);
      pipeline(upstream, egress.carry(), client).catch(cut);
    }, spec.rttMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, egress, ingress };
}

/** Starts one link per registry (name -> URL) in a child process. */
export async function startWanLinks(registries: Record<string, string>, spec: LinkSpec): Promise<WanLinks> {
  const child = fork(fileURLToPath(import.meta.url), [JSON.stringify({ registries, spec })], { execArgv: ['--import', 'tsx'] });
  const ask = <T>(message?: string) =>
    new Promise<T>((resolve, reject) => {
      const exited = (code: number | null) => reject(new Error(`the WAN link process exited (${code})`));
      child.once('exit', exited);
      child.once('message', (reply) => {
        child.off('exit', exited);
        resolve(reply as T);
      });
      if (message) child.send(message);
    });
  const urls = await ask<Record<string, string>>();
  return {
    urls,
    take: () => ask('take'),
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill();
      await exited;
    },
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { registries, spec } = JSON.parse(process.argv[2]) as { registries: Record<string, string>; spec: LinkSpec };
  const links = Object.fromEntries(await Promise.all(Object.entries(registries).map(async ([name, url]) => [name, await serveLink(new URL(url), spec)] as const)));
  process.on('message', () => {
    const taken: Record<string, LinkBytes> = {};
    for (const [name, { egress, ingress }] of Object.entries(links)) {
      taken[name] = { egress: egress.bytes, ingress: ingress.bytes };
      egress.bytes = ingress.bytes = 0;
    }
    process.send!(taken);
  });
  // The bench is gone: so is the emulated network.
  process.on('disconnect', () => process.exit());
  process.send!(Object.fromEntries(Object.entries(links).map(([name, l]) => [name, l.url])));
}

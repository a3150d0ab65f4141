import { createHash } from 'node:crypto';
import { createServer } from 'node:net';
import { ProviderError } from '../provider.ts';

// A machine's sshd is published on a loopback port of the engine's host, among the host's own ports. It gets one
// below Linux's ephemeral range (32768 and up), where outgoing connections and other servers' free-port picks
// land; a name's hash spreads machines over the range.
const first = 22000;
const count = 10000;

/** A loopback port free now and not held by another machine (`taken`: the ports of every berth container). */
export async function allocateSshPort(machine: string, taken: ReadonlySet<number>): Promise<number> {
  const start = createHash('sha256').update(machine).digest().readUInt32BE(0) % count;
  for (let i = 0; i < count; i++) {
    const port = first + ((start + i) % count);
    if (!taken.has(port) && (await isFree(port))) return port;
  }
  throw new ProviderError('NoCapacity', `no free loopback port for sshd in ${first}-${first + count - 1}`);
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * The machine's own loopback address on the engine's host, where its sshd and every port it listens on are
 * published: made from its SSH port, which no other machine of the engine holds, so no two machines share one.
 */
export function machineAddress(sshPort: number): string {
  return `127.1.${sshPort >> 8}.${sshPort & 255}`;
}

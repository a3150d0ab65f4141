import Dockerode from 'dockerode';
import { HostError } from '../hosts/errors.ts';
import { resolvePrivateKey } from '../hosts/private-key.ts';
import { fingerprint } from '../hosts/session.ts';
import { getMachine } from '../../inventory/index.ts';
import type { MachineContext } from '../machine-context.ts';

/** Runs `use` against the Docker engine of an inventory machine, reached over SSH. */
export type WithMachineEngine = <T>(machineId: string, use: (docker: Dockerode) => Promise<T>) => Promise<T>;

/**
 * `withMachineEngine` for the machines of this worker's inventory: dockerode over SSH (docker-modem's `ssh`
 * protocol runs `docker system dial-stdio` on the machine), as the cluster's SSH user with its key resolved here from
 * the reference in config, and only to a host presenting the host key pinned in the inventory on first contact.
 * There is no TCP port of the engine to reach: its socket stays on the machine, behind sshd.
 *
 * docker-modem opens one SSH connection per API request and ends it with the request, so nothing stays open once
 * `use` has settled (a stream `use` leaves open keeps its own connection until it is destroyed).
 */
export function machineEngines(context: Pick<MachineContext, 'inventory' | 'clusterOf'>, opts: { readyTimeoutMs?: number } = {}): { withMachineEngine: WithMachineEngine } {
  const readyTimeout = opts.readyTimeoutMs ?? 20_000;
  return {
    async withMachineEngine(machineId, use) {
      const machine = await getMachine(await context.inventory(), machineId);
      const where = `machine ${machine.id} (${machine.cluster}/${machine.pool}/${machine.name})`;
      if (machine.destroyedAt !== null) throw new HostError('MachineNotReady', `${where} was destroyed at ${machine.destroyedAt}: it has no engine`);
      const pinned = machine.hostKeyFingerprint;
      if (machine.address === null || machine.sshPort === null || pinned === null) {
        throw new HostError('MachineNotReady', `${where} has no SSH address or pinned host key yet (state ${machine.state}): its engine is reached only once provisioning has met it`);
      }
      const cluster = context.clusterOf(machine.cluster);
      const privateKey = resolvePrivateKey(cluster.name, cluster.ssh.privateKey);
      let presented: string | undefined;
      const docker = new Dockerode({
        protocol: 'ssh',
        host: machine.address,
        port: machine.sshPort,
        username: cluster.ssh.user,
        sshOptions: {
          privateKey,
          readyTimeout,
          hostVerifier: (key: Buffer) => (presented = fingerprint(key)) === pinned,
        },
      });
      const target = `${cluster.ssh.user}@${machine.address}:${machine.sshPort}`;
      // One round trip first, so that whatever refuses the connection is said here in berth's terms, before `use`.
      await docker.ping().catch((err: Error & { level?: string }) => {
        if (presented !== undefined && presented !== pinned) {
          throw new HostError('HostKeyMismatch', `${where} at ${target} presented host key ${presented}, not ${pinned} pinned on first contact: refused (another machine answers at this address, or the connection is intercepted)`);
        }
        if (err.level === 'client-authentication') throw new HostError('SshAuthFailed', `${where} at ${target} refused the key: ${err.message}`, { cause: err });
        if (err.level !== undefined) throw new HostError('HostUnreachable', `cannot connect to ${where} at ${target}: ${err.message}`, { cause: err });
        // SSH let us in, but `docker system dial-stdio` found no engine to talk to.
        throw new HostError('EngineUnavailable', `the Docker engine of ${where} does not answer over SSH (${err.message}): is the docker init step in its profile?`, { cause: err });
      });
      return use(docker);
    },
  };
}

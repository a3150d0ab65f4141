import { ApplicationFailure, Context } from '@temporalio/activity';
import { z } from 'zod';
import { formatPath, machineRegistry, type BerthConfig } from '../../config/load.ts';
import { knownSecrets, secretRedactor } from '../../config/secrets.ts';
import { activityTiming } from '../../contracts/activity-timing.ts';
import { asTemporalFailure } from '../failures.ts';
import { resolvePrivateKey } from './private-key.ts';
import { runInitProfile, type StepResult } from './profile.ts';
import { connectWhenReady, SshSession, type SshTarget } from './session.ts';

export type { StepResult } from './profile.ts';

const hostSchema = z
  .object({
    cluster: z.string().min(1),
    address: z.string().min(1),
    sshPort: z.number().int().min(1).max(65535),
    /** As waitForSsh returned it on first contact; when given, a host presenting another key is refused. */
    hostKeyFingerprint: z
      .string()
      .regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'must be an OpenSSH SHA256 fingerprint')
      .optional(),
  })
  .strict();

const waitForSshSchema = hostSchema.extend({ timeoutSeconds: z.number().int().min(1).max(3600).default(180) });
const initMachineSchema = hostSchema.extend({
  pool: z.string().min(1),
  machineName: z.string().min(1),
  hostKeyFingerprint: hostSchema.shape.hostKeyFingerprint.unwrap(),
});

export type WaitForSshInput = z.input<typeof waitForSshSchema>;
export type InitMachineInput = z.input<typeof initMachineSchema>;

/**
 * Activities on a cluster's hosts, for the cluster IDC's task queue (SSH goes from inside the IDC). Inputs carry
 * names and addresses only: the private key is resolved here, from the cluster's reference in config.
 */
export function createHostActivities(config: BerthConfig) {
  const clusterOf = (name: string) => {
    const cluster = config.clusters.find((c) => c.name === name);
    if (!cluster) throw ApplicationFailure.nonRetryable(`cluster "${name}" is not in this worker's config`, 'UnknownCluster');
    return cluster;
  };
  const target = (input: z.infer<typeof hostSchema>): SshTarget => {
    const cluster = clusterOf(input.cluster);
    const privateKey = resolvePrivateKey(cluster.name, cluster.ssh.privateKey);
    return { address: input.address, port: input.sshPort, user: cluster.ssh.user, privateKey, hostKeyFingerprint: input.hostKeyFingerprint };
  };

  return {
    /**
     * Waits until the machine's sshd lets the cluster's user in and runs a command as root (sudo -n for a non-root
     * user); returns the host key's fingerprint, to record on first contact and pass to every later activity.
     */
    async waitForSsh(raw: WaitForSshInput): Promise<{ hostKeyFingerprint: string }> {
      const input = parseInput('waitForSsh', waitForSshSchema, raw);
      const ctx = Context.current();
      return asTemporalFailure(async () => {
        const session = await connectWhenReady(target(input), { timeoutMs: input.timeoutSeconds * 1000, onAttempt: () => ctx.heartbeat(), pause: (ms) => ctx.sleep(ms) });
        try {
          await session.run('true', { what: 'a command as root' });
          return { hostKeyFingerprint: session.hostKeyFingerprint };
        } finally {
          session.close();
        }
      });
    },

    /** Runs the pool's init profile on the machine (see runInitProfile); heartbeats with the steps done so far. */
    async initMachine(raw: InitMachineInput): Promise<StepResult[]> {
      const input = parseInput('initMachine', initMachineSchema, raw);
      const cluster = clusterOf(input.cluster);
      const pool = cluster.pools.find((p) => p.name === input.pool);
      if (!pool) throw ApplicationFailure.nonRetryable(`cluster ${cluster.name} has no pool "${input.pool}"`, 'UnknownPool');
      const registry = machineRegistry(config, cluster);
      const ctx = Context.current();
      const done: StepResult[] = [];
      const heartbeat = setInterval(() => ctx.heartbeat({ done: done.length }), activityTiming.initMachine.heartbeat.everyMs);
      try {
        return await asTemporalFailure(async () => {
          const session = await SshSession.connect(target(input));
          const stop = () => session.close();
          ctx.cancellationSignal.addEventListener('abort', stop);
          try {
            const redact = secretRedactor(knownSecrets(config));
            return await runInitProfile(
              session,
              config.initProfiles[pool.initProfile],
              { machineName: input.machineName, registryMirror: registry?.url, insecureRegistry: registry?.insecure ? registry.host : undefined, redact },
              (r) => {
                done.push(r);
                ctx.heartbeat({ done: done.length });
              },
            );
          } catch (err) {
            throw ctx.cancellationSignal.aborted ? ctx.cancellationSignal.reason : err;
          } finally {
            ctx.cancellationSignal.removeEventListener('abort', stop);
            session.close();
          }
        });
      } finally {
        clearInterval(heartbeat);
      }
    },
  };
}

function parseInput<S extends z.ZodType>(activity: string, schema: S, raw: unknown): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => `${formatPath(i.path) || '(input)'}: ${i.message}`);
  throw ApplicationFailure.nonRetryable(`invalid ${activity} input: ${issues.join('; ')}`, 'InvalidInput');
}

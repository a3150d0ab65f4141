import type { z } from 'zod';
import type { SshSession } from '../session.ts';
import type { stepSchemas } from './schemas.ts';

export type StepKind = keyof typeof stepSchemas;
/** A step's spec as config parsed it (defaults filled in). */
export type StepSpec<K extends StepKind> = z.output<(typeof stepSchemas)[K]>;

/** What a profile run knows about the machine besides the steps. */
export interface InitContext {
  /** The machine's name: the hostname step's default. */
  machineName: string;
  /** Where the docker step points the engine's registry mirror: the registry of the machine's IDC. */
  registryMirror?: string;
  /** A registry (host:port) the engine speaks plain HTTP to: the IDC registry at the address the machine reaches it. */
  insecureRegistry?: string;
  /** Takes the secrets this worker knows out of a text (script steps' commands and output): see secretRedactor. */
  redact?: (text: string) => string;
}

/**
 * One kind of init step, in Ansible's contract: `probe` lists how the host differs from the spec (nothing when it
 * is as wanted), `apply` changes only that, and `probe` again verifies it.
 */
export interface StepDef<K extends StepKind> {
  /** How reports name the step when its kind is not enough (`script:migrate`). */
  label?(spec: StepSpec<K>): string;
  /** What the step sets, for its report: `net.core.somaxconn=4096`. */
  summary(spec: StepSpec<K>, ctx: InitContext): string;
  probe(session: SshSession, spec: StepSpec<K>, ctx: InitContext): Promise<string[]>;
  /** May return a note for the report: what it could not do on this host, and why. */
  apply(session: SshSession, spec: StepSpec<K>, ctx: InitContext): Promise<string | void>;
}

/** The lines of a probe script's stdout: one difference each. */
export async function driftLines(session: SshSession, script: string, opts: Parameters<SshSession['run']>[1]): Promise<string[]> {
  return (await session.run(script, opts)).split('\n').filter((l) => l.trim() !== '');
}

/**
 * Restarts a service where a service manager owns it. Host containers have none (no init, and policy-rc.d keeps
 * packages from starting services), so there the note says the service was configured but not started.
 */
export async function restartService(session: SshSession, service: string): Promise<string | void> {
  const out = await session.run('if [ -d /run/systemd/system ]; then systemctl restart "$1"; else echo none; fi', { args: [service], what: `restart ${service}` });
  if (out.trim() === 'none') return `${service} not (re)started: this host has no service manager (a container)`;
}

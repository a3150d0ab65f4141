import type { StepDef } from './step.ts';
import { driftLines } from './step.ts';

const probe = `name=$1
[ "$(hostname)" = "$name" ] || echo "running hostname was $(hostname)"
[ "$(cat /etc/hostname 2>/dev/null)" = "$name" ] || echo "/etc/hostname did not say $name"
grep -qxF "127.0.1.1 $name" /etc/hosts || echo "/etc/hosts did not map $name"`;

// /etc/hostname and /etc/hosts are written in place: in a container they are bind mounts, which a rename cannot replace.
const apply = `set -e
name=$1
printf '%s\\n' "$name" > /etc/hostname
hostname "$name"
others=$(grep -v '^127\\.0\\.1\\.1[[:space:]]' /etc/hosts || true)
printf '%s\\n127.0.1.1 %s\\n' "$others" "$name" > /etc/hosts`;

/** The hostname (the machine's name unless the step names one), persisted and resolvable (sudo looks it up). */
export const hostnameStep: StepDef<'hostname'> = {
  summary: (spec, ctx) => `hostname ${spec.name ?? ctx.machineName}`,
  probe: (session, spec, ctx) => driftLines(session, probe, { args: [spec.name ?? ctx.machineName], what: 'probe hostname' }),
  async apply(session, spec, ctx) {
    await session.run(apply, { args: [spec.name ?? ctx.machineName], what: 'set hostname' });
  },
};

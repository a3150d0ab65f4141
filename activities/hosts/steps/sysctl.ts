import { hasContent, writeFile } from '../files.ts';
import type { StepDef, StepSpec } from './step.ts';
import { driftLines } from './step.ts';

const file = '/etc/sysctl.d/90-berth.conf';

// The kernel prints multi-value keys with tabs (net.ipv4.tcp_rmem); compare with whitespace collapsed.
const normalize = (v: string | number) => String(v).trim().replace(/\s+/g, ' ');

const content = (spec: StepSpec<'sysctl'>) =>
  `# written by berth: the sysctl step of this machine's init profile\n${Object.keys(spec)
    .sort()
    .map((k) => `${k} = ${normalize(spec[k])}\n`)
    .join('')}`;

// Key/value pairs come as arguments: $1 $2 is the first pair.
const probeLive = `while [ $# -gt 0 ]; do
  now=$(sysctl -n "$1" 2>&1 | tr -s '[:space:]' ' ' | sed 's/ $//')
  [ "$now" = "$2" ] || echo "$1 was $now"
  shift 2
done`;

/**
 * Kernel parameters, live and persisted under /etc/sysctl.d/ (so a reboot keeps them). On the docker provider's
 * machines a net.* key is the machine's own network namespace's; keys the kernel does not namespace (vm.*, most of
 * kernel.*) are the engine host's.
 */
export const sysctlStep: StepDef<'sysctl'> = {
  summary: (spec) =>
    Object.entries(spec)
      .map(([k, v]) => `${k}=${normalize(v)}`)
      .join(' '),
  async probe(session, spec) {
    const pairs = Object.entries(spec).flatMap(([k, v]) => [k, normalize(v)]);
    const live = await driftLines(session, probeLive, { args: pairs, what: 'probe sysctl' });
    return (await hasContent(session, file, content(spec))) ? live : [...live, `${file} was not as wanted`];
  },
  async apply(session, spec) {
    await writeFile(session, file, content(spec));
    await session.run('sysctl -q -p "$1"', { args: [file], what: `sysctl -p ${file}` });
  },
};

import { ensurePackages, packageDrift } from '../apt.ts';
import { hasContent, writeFile } from '../files.ts';
import type { StepDef, StepSpec } from './step.ts';
import { restartService } from './step.ts';

const file = '/etc/chrony/chrony.conf';

// Debian's defaults, with the cluster's servers in place of the Debian pool.
const content = (spec: StepSpec<'chrony'>) =>
  [
    "# written by berth: the chrony step of this machine's init profile",
    ...spec.servers.map((s) => `server ${s} iburst`),
    'keyfile /etc/chrony/chrony.keys',
    'driftfile /var/lib/chrony/chrony.drift',
    'logdir /var/log/chrony',
    'maxupdateskew 100.0',
    'rtcsync',
    'makestep 1 3',
    'leapsectz right/UTC',
    '',
  ].join('\n');

/** NTP through chrony: the package, and a config naming the cluster's servers. */
export const chronyStep: StepDef<'chrony'> = {
  summary: (spec) => `chrony servers ${spec.servers.join(', ')}`,
  async probe(session, spec) {
    const missing = await packageDrift(session, ['chrony']);
    return (await hasContent(session, file, content(spec))) ? missing : [...missing, `${file} did not name exactly these servers`];
  },
  async apply(session, spec) {
    await ensurePackages(session, ['chrony']);
    await writeFile(session, file, content(spec));
    // chronyd parses the config and exits (-p): a config it refuses fails the step here, not at the next boot.
    await session.run('chronyd -p -f "$1" >/dev/null', { args: [file], what: `chronyd -p -f ${file}` });
    return restartService(session, 'chrony');
  },
};

import { dirname } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { ensurePackages, packageDrift } from '../apt.ts';
import { readFile, writeFile } from '../files.ts';
import { HostError } from '../errors.ts';
import type { SshSession } from '../session.ts';
import type { InitContext, StepDef, StepSpec } from './step.ts';

const file = '/etc/docker/daemon.json';
const engine = 'docker.io';
// The daemon.json the running engine was started with (gone at reboot, with the engine's process).
const started = '/run/berth/docker-daemon.json';

function daemonConfig(spec: StepSpec<'docker'>, ctx: InitContext): Record<string, unknown> {
  if (spec.mirror && ctx.registryMirror === undefined) {
    throw new HostError('InitStepFailed', "the docker step asks for a registry mirror, but the machine's IDC has no registry");
  }
  return {
    ...(spec.mirror ? { 'registry-mirrors': [ctx.registryMirror] } : {}),
    ...(ctx.insecureRegistry ? { 'insecure-registries': [ctx.insecureRegistry] } : {}),
    'log-driver': 'json-file',
    // dockerd wants both log options as strings.
    'log-opts': { 'max-size': spec.logMaxSize, 'max-file': String(spec.logMaxFiles) },
  };
}

/**
 * How the engine differs from a running one that read the current daemon.json: not answering `docker info`, or
 * not restarted by this step since the file changed. Also: berth's login (not root) outside the `docker` group cannot reach the
 * engine over SSH (the machine-engine connection runs `docker system dial-stdio` as that login).
 */
const engineProbe = `
if ! out=$(timeout 20 docker info --format '{{.ServerVersion}}' 2>&1); then
  echo "the engine did not answer docker info: $(printf '%s' "$out" | tail -n 1)"
elif ! cmp -s ${file} ${started}; then
  echo "the engine had not been restarted since ${file} changed"
fi
if [ "$1" != root ] && ! id -nG "$1" | tr ' ' '\\n' | grep -qx docker; then echo "$1 was not in group docker"; fi
`;

/**
 * (Re)starts the engine and waits until it answers: through systemd where it runs (and enabled, so a reboot starts
 * it), else as a daemon of its own, detached from this SSH session. Host containers have no init; the docker
 * provider's machines are made so that an engine runs inside them (activities/cloud/docker/).
 */
const engineStart = `set -e
if [ -d /run/systemd/system ]; then
  systemctl enable docker >/dev/null 2>&1
  systemctl restart docker
else
  if pid=$(pidof -s dockerd); then
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  setsid dockerd </dev/null >>/var/log/dockerd.log 2>&1 &
fi
mkdir -p ${dirname(started)} && cp ${file} ${started}
for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
[ "$1" = root ] || usermod -aG docker "$1"
docker info --format '{{.ServerVersion}}' >/dev/null || { echo "dockerd did not come up; the end of its log:" >&2; tail -n 15 /var/log/dockerd.log >&2 2>/dev/null || journalctl -u docker -n 15 --no-pager >&2; exit 1; }
`;

const engineDrift = async (session: SshSession) => (await session.run(engineProbe, { args: [session.target.user], what: 'docker info' })).split('\n').filter(Boolean);

/**
 * The Docker engine (Debian's docker.io) with /etc/docker/daemon.json (the IDC registry as mirror, log rotation),
 * running and answering `docker info`. The file is berth's: any other content is replaced, and the engine restarted
 * to read it.
 */
export const dockerStep: StepDef<'docker'> = {
  summary: (spec, ctx) => `${engine}${spec.mirror ? `, mirror ${ctx.registryMirror}` : ''}, logs ${spec.logMaxFiles} x ${spec.logMaxSize}`,
  async probe(session, spec, ctx) {
    const drift = await packageDrift(session, [engine]);
    if (drift.length > 0) return drift;
    const text = await readFile(session, file);
    let current: unknown;
    try {
      current = text === undefined ? undefined : JSON.parse(text);
    } catch {
      return [`${file} was not valid JSON`];
    }
    if (current === undefined) return [`${file} did not exist`];
    if (!isDeepStrictEqual(current, daemonConfig(spec, ctx))) return [`${file} was not as wanted`];
    return engineDrift(session);
  },
  async apply(session, spec, ctx) {
    await ensurePackages(session, [engine]);
    const wanted = `${JSON.stringify(daemonConfig(spec, ctx), null, 2)}\n`;
    if ((await readFile(session, file)) !== wanted) await writeFile(session, file, wanted);
    await session.run(engineStart, { args: [session.target.user], timeoutMs: 120_000, what: 'start the Docker engine' });
  },
};

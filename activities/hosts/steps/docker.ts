import { isDeepStrictEqual } from 'node:util';
import { ensurePackages, packageDrift } from '../apt.ts';
import { readFile, writeFile } from '../files.ts';
import { HostError } from '../errors.ts';
import type { InitContext, StepDef, StepSpec } from './step.ts';
import { restartService } from './step.ts';

const file = '/etc/docker/daemon.json';
const engine = 'docker.io';

function daemonConfig(spec: StepSpec<'docker'>, ctx: InitContext): Record<string, unknown> {
  if (spec.mirror && ctx.registryMirror === undefined) {
    throw new HostError('InitStepFailed', "the docker step asks for a registry mirror, but the machine's IDC has no registry");
  }
  return {
    ...(spec.mirror ? { 'registry-mirrors': [ctx.registryMirror] } : {}),
    'log-driver': 'json-file',
    // dockerd wants both log options as strings.
    'log-opts': { 'max-size': spec.logMaxSize, 'max-file': String(spec.logMaxFiles) },
  };
}

/**
 * The Docker engine (Debian's docker.io) with /etc/docker/daemon.json: the IDC registry as mirror, log rotation.
 * The file is berth's: any other content is replaced. Where there is no service manager (the docker provider's
 * containers cannot run an engine inside) the engine is configured but not started, and the report says so.
 */
export const dockerStep: StepDef<'docker'> = {
  summary: (spec, ctx) => `${engine}${spec.mirror ? `, mirror ${ctx.registryMirror}` : ''}, logs ${spec.logMaxFiles} x ${spec.logMaxSize}`,
  async probe(session, spec, ctx) {
    const drift = await packageDrift(session, [engine]);
    const text = await readFile(session, file);
    let current: unknown;
    try {
      current = text === undefined ? undefined : JSON.parse(text);
    } catch {
      return [...drift, `${file} was not valid JSON`];
    }
    if (current === undefined) return [...drift, `${file} did not exist`];
    return isDeepStrictEqual(current, daemonConfig(spec, ctx)) ? drift : [...drift, `${file} was not as wanted`];
  },
  async apply(session, spec, ctx) {
    await ensurePackages(session, [engine]);
    await writeFile(session, file, `${JSON.stringify(daemonConfig(spec, ctx), null, 2)}\n`);
    return restartService(session, 'docker');
  },
};

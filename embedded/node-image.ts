import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { DockerEngine } from './docker-engine.ts';
import type { HostImage } from './host-image.ts';

/**
 * What berth's Dockerfile is built on where no image can be pulled (NODE_IMAGE): the host image's Debian rootfs
 * (made with mmdebstrap and cached under ~/.cache/berth, embedded/host-image.ts) plus this machine's Node and npm,
 * laid out as the official node images do (/usr/local), with node-gyp pointed at the local headers (nodejs.org is
 * out of reach) so that native modules build from source, and this machine's own CAs.
 */
export async function ensureNodeImage(engine: DockerEngine, host: HostImage): Promise<string> {
  const node = process.execPath;
  const npm = join(dirname(node), '..', 'lib', 'node_modules', 'npm');
  const headers = join(dirname(node), '..', 'include', 'node');
  const localCa = '/usr/local/share/ca-certificates';
  const dockerfile = `FROM ${host.tag}
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY include /usr/local/include/node
COPY local-ca /usr/local/share/ca-certificates
RUN update-ca-certificates >/dev/null
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
ENV npm_config_nodedir=/usr/local NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
ENTRYPOINT []
CMD ["node"]
`;
  // One tag per base and Node version: a new Node or a new host image is a new base, never a stale one.
  const hash = createHash('sha256')
    .update(dockerfile)
    .update(process.version)
    .update(existsSync(localCa) ? readdirSync(localCa).join() : '')
    .digest('hex')
    .slice(0, 12);
  const tag = `berth-node:${process.versions.node}-${hash}`;
  if (
    await engine.docker
      .getImage(tag)
      .inspect()
      .then(
        () => true,
        () => false,
      )
  )
    return tag;
  const context = mkdtempSync(join(tmpdir(), 'berth-node-image-'));
  try {
    writeFileSync(join(context, 'Dockerfile'), dockerfile);
    cpSync(node, join(context, 'node'));
    cpSync(npm, join(context, 'npm'), { recursive: true });
    cpSync(headers, join(context, 'include'), { recursive: true });
    // This machine's own CAs (package registries may be reached through a proxy with a CA of its own), where
    // update-ca-certificates keeps them when an image build installs ca-certificates again.
    mkdirSync(join(context, 'local-ca'));
    if (existsSync(localCa)) cpSync(localCa, join(context, 'local-ca'), { recursive: true });
    await dockerBuild(engine, context, ['--tag', tag], join(context, 'build.log'));
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
  return tag;
}

/**
 * `docker build` with the classic builder (BuildKit would pull its frontend image) and the host's network (the
 * engine runs without a bridge), on the engine berth uses. The log goes to `logFile`.
 */
export async function dockerBuild(engine: DockerEngine, context: string, args: string[], logFile: string): Promise<void> {
  mkdirSync(dirname(logFile), { recursive: true });
  const env = { ...process.env, DOCKER_BUILDKIT: '0', DOCKER_HOST: `unix://${engine.socketPath}` };
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn('docker', ['build', '--network', 'host', ...args, context], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    child.once('error', reject);
    child.once('exit', (c) => {
      writeFileSync(logFile, Buffer.concat(chunks));
      resolve(c ?? 1);
    });
  });
  if (code !== 0) {
    const tail = readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-20).join('\n');
    throw new Error(`docker build ${context} failed (exit ${code}); the end of ${logFile}:\n${tail}`);
  }
}

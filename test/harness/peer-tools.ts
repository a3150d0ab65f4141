// crane and regctl, built into .tools/bin by `scripts/setup.sh test`: other tools' view of what berth copied, and
// the way their users push images and attach referrers.
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from '../../testbed/berth.ts';
import type { BuiltImage, RegistryLogin } from '../../testbed/oci-layout.ts';

const run = promisify(execFile);
const tool = (name: string) => fileURLToPath(new URL(`../../.tools/bin/${name}`, import.meta.url));
/** A home of their own: neither tool reads or writes the user's ~/.docker or ~/.regctl. */
const home = tempDir('peer-tools');

const hostOf = (reg: RegistryLogin) => new URL(reg.url).host;

/** `host/image` for a tool's command line. */
export function remote(reg: RegistryLogin, image: string): string {
  return `${hostOf(reg)}/${image}`;
}

/** Runs regctl against the given registries (plain http, their logins); stdin when given. Returns stdout. */
export async function regctl(registries: RegistryLogin[], args: string[], stdin?: string | Buffer): Promise<string> {
  const hosts = registries.flatMap((r) => ['--host', [`reg=${hostOf(r)}`, 'tls=disabled', ...(r.username ? [`user=${r.username}`, `pass=${r.password}`] : [])].join(',')]);
  const child = run(tool('regctl'), [...args, ...hosts], { env: { ...process.env, HOME: home }, maxBuffer: 16 << 20 });
  if (stdin !== undefined) child.child.stdin!.end(stdin);
  return (await child).stdout;
}

/** Runs crane (plain http) with the given registries' logins. Returns stdout. */
export async function crane(registries: RegistryLogin[], args: string[]): Promise<string> {
  const dockerConfig = join(home, `docker-${registries.map(hostOf).join('-').replaceAll(':', '_')}`);
  mkdirSync(dockerConfig, { recursive: true });
  const auths = Object.fromEntries(registries.filter((r) => r.username).map((r) => [hostOf(r), { auth: Buffer.from(`${r.username}:${r.password}`).toString('base64') }]));
  writeFileSync(join(dockerConfig, 'config.json'), JSON.stringify({ auths }));
  const { stdout } = await run(tool('crane'), [...args, '--insecure'], { env: { ...process.env, HOME: home, DOCKER_CONFIG: dockerConfig }, maxBuffer: 16 << 20 });
  return stdout;
}

/** The referrers another client finds for an image: `regctl artifact list` (the Referrers API, else the tag schema). */
export async function referrersWithRegctl(reg: RegistryLogin, image: string): Promise<string[]> {
  const descriptors = JSON.parse(await regctl([reg], ['artifact', 'list', remote(reg, image), '--format', '{{json .Descriptors}}'])) as { digest: string }[] | null;
  return (descriptors ?? []).map((d) => d.digest).sort();
}

/** Attaches an artifact to an image as its users do: `regctl artifact put --subject`; returns the referrer's digest. */
export async function attachWithRegctl(reg: RegistryLogin, image: string, artifactType: string, content: unknown): Promise<string> {
  const args = ['artifact', 'put', '--artifact-type', artifactType, '--subject', remote(reg, image), '--format', '{{ .Manifest.GetDescriptor.Digest }}'];
  return (await regctl([reg], args, JSON.stringify(content))).trim();
}

/** Pushes a layout with `regctl image copy`, layers with `urls` included (regctl skips them unless told). */
export async function pushWithRegctl(image: BuiltImage, reg: RegistryLogin, repository: string): Promise<void> {
  await regctl([reg], ['image', 'copy', '--include-external', `ocidir://${image.layoutDir}:${image.tag}`, remote(reg, `${repository}:${image.tag}`)]);
}

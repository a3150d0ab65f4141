import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, renameSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { berthCacheDir } from './docker-engine.ts';

/** The machines of the `docker` provider: Debian bookworm with sshd, made from a rootfs (no image can be pulled here). */
export const hostImageRepository = 'berth-host';

/**
 * PID 1 of a host container. Everything it does is idempotent: it runs again on every restart. The container
 * shares the engine host's network namespace; the machine does not: its sshd, and so every SSH session, runs in a
 * network namespace of the machine's own, which slirp4netns (user-mode networking, no bridge or firewall rule on
 * the host) connects to the outside and whose sshd it publishes on the loopback port the provider chose.
 */
const initScript = `#!/bin/bash
# A berth host container boots here. On first boot it makes its own SSH host keys and the login it was created
# for (what cloud-init does on a cloud image); then it gives the machine its own network namespace and runs sshd
# inside it, published on BERTH_ADDRESS:BERTH_SSH_PORT of the engine's host (the machine's own loopback address).
set -eu
: "\${BERTH_SSH_PORT:?the docker provider sets BERTH_SSH_PORT}"
: "\${BERTH_ADDRESS:=127.0.0.1}"
user="\${BERTH_SSH_USER:-root}"
if [ -n "\${BERTH_AUTHORIZED_KEY:-}" ]; then
  if ! id "$user" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash "$user"
    echo "$user ALL=(ALL) NOPASSWD:ALL" > "/etc/sudoers.d/90-berth-$user"
    chmod 0440 "/etc/sudoers.d/90-berth-$user"
  fi
  home=$(getent passwd "$user" | cut -d: -f6)
  mkdir -p "$home/.ssh"
  keys="$home/.ssh/authorized_keys"
  grep -qxF "$BERTH_AUTHORIZED_KEY" "$keys" 2>/dev/null || printf '%s\\n' "$BERTH_AUTHORIZED_KEY" >> "$keys"
  chmod 0700 "$home/.ssh" && chmod 0600 "$keys" && chown -R "$user:" "$home/.ssh"
fi
ssh-keygen -A >/dev/null
# The engine inside (the docker init step starts it) makes cgroups for its containers: the container's own cgroup
# mounts come read-only, and its private cgroup namespace makes them this machine's to write.
for mount in $(findmnt -rn -t cgroup,cgroup2 -o TARGET); do mount -o remount,bind,rw "$mount"; done
mkdir -p /run/sshd /run/berth
netns=/run/berth/netns
touch "$netns"
unshare --net="$netns" true
nsenter --net="$netns" ip link set lo up
# 10.0.2.100 inside, the default route via 10.0.2.2 (which also reaches the host's 127.0.0.1), DNS as the host's.
rm -f /run/berth/slirp.sock
slirp4netns --configure --mtu=65520 --api-socket /run/berth/slirp.sock --netns-type=path "$netns" tap0 &
# One request to slirp4netns's API; prints its answer.
slirp() { perl -MIO::Socket::UNIX -e '$s = IO::Socket::UNIX->new(Peer => "/run/berth/slirp.sock") or exit 1; print $s $ARGV[0]; shutdown($s, 1); print <$s>' "$1" 2>/dev/null; }
forward() { slirp '{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"'"$BERTH_ADDRESS"'","host_port":'"$1"',"guest_port":'"$2"'}}'; }
answer=
for _ in $(seq 100); do
  answer=$(forward "$BERTH_SSH_PORT" 22) || true
  case "$answer" in *'"return"'*) break ;; esac
  sleep 0.1
done
case "$answer" in
  *'"return"'*) ;;
  *) echo "berth-host-init: cannot publish sshd on $BERTH_ADDRESS:$BERTH_SSH_PORT: \${answer:-slirp4netns does not answer}" >&2; exit 1 ;;
esac
# Every other TCP port the machine listens on at all its addresses (a container's published port, say) is reachable
# at BERTH_ADDRESS on the engine's host, the same port, as a VM's would be at its own address; a port closed is
# withdrawn. Checked twice a second.
publish_listening_ports() {
  declare -A published=()
  while sleep 0.5; do
    listening=" $(nsenter --net="$netns" ss -Hltn | awk '$4 ~ /^(0\\.0\\.0\\.0|\\*|\\[::\\]):[0-9]+$/ { sub(/.*:/, "", $4); if ($4 != 22) print $4 }' | sort -u | tr '\\n' ' ')"
    for port in $listening; do
      [ -n "\${published[$port]:-}" ] && continue
      id=$(forward "$port" "$port" | sed -n 's/.*"id": *\\([0-9][0-9]*\\).*/\\1/p')
      [ -n "$id" ] && published[$port]=$id
    done
    for port in "\${!published[@]}"; do
      case "$listening" in *" $port "*) continue ;; esac
      slirp '{"execute":"remove_hostfwd","arguments":{"id":'"\${published[$port]}"'}}' >/dev/null || true
      unset "published[$port]"
    done
  done
}
publish_listening_ports &
nsenter --net="$netns" /usr/sbin/sshd -D -e -p 22 &
# A stop ends both at once (PID 1 has no default handler for TERM); either one ending ends the machine, and the
# engine's restart policy brings it back.
trap 'kill $(jobs -p) 2>/dev/null; exit 0' TERM INT
wait -n
`;

/** Files laid over the rootfs, with their modes. */
const overlay: Record<string, { mode: number; content: string }> = {
  'usr/local/sbin/berth-host-init': { mode: 0o755, content: initScript },
  // As in Debian's own container images: packages do not start their services (there is no init to own them).
  'usr/sbin/policy-rc.d': { mode: 0o755, content: '#!/bin/sh\n# no init system in a container: packages must not start services\nexit 101\n' },
  'etc/ssh/sshd_config.d/berth.conf': {
    mode: 0o644,
    content: "# berth hosts take keys only; berth-host-init runs sshd in the machine's network namespace\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nClientAliveInterval 30\n",
  },
  // The docker provider's mutable tags (container labels cannot change after create).
  'etc/berth/tags.json': { mode: 0o644, content: '{}\n' },
};

// slirp4netns: the machine's network (see initScript); docker.io: the engine the docker init step starts (installed
// here so that a machine runs containers seconds after boot, not after an apt-get of its own).
const packages = ['openssh-server', 'sudo', 'iproute2', 'procps', 'ca-certificates', 'slirp4netns', 'docker.io'];

/**
 * The apt sources inside the image: this host's Debian sources when it runs bookworm (the mirror known to work
 * from here), else mmdebstrap's default (deb.debian.org with updates and security).
 */
function aptSources(): string | undefined {
  const file = '/etc/apt/sources.list.d/debian.sources';
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  return /\bbookworm\b/.test(text) ? text : undefined;
}

function recipe() {
  const sources = aptSources();
  return { suite: 'bookworm', variant: 'minbase', packages, overlay, sources, removeHostKeys: true };
}

export interface HostImage {
  /** `berth-host:bookworm-<recipe hash>`: a changed recipe is a new image, never a stale cached one. */
  tag: string;
  /** `berth-host:bookworm`, moved to this build: the docker provider's default image. */
  alias: string;
  /** What this call had to do: nothing, an import of the cached rootfs, or a build and an import. */
  did: 'nothing' | 'import' | 'build+import';
  ms: number;
}

/**
 * The host image on this engine, built once per recipe: the rootfs tarball is cached under ~/.cache/berth (a fresh
 * engine imports it in seconds), and the engine keeps the imported image (a second call is instant).
 */
export async function ensureHostImage(docker: Docker, opts: { cacheDir?: string } = {}): Promise<HostImage> {
  const started = Date.now();
  const r = recipe();
  const hash = createHash('sha256').update(JSON.stringify(r)).digest('hex').slice(0, 12);
  const tag = `${hostImageRepository}:${r.suite}-${hash}`;
  const alias = `${hostImageRepository}:${r.suite}`;
  let did: HostImage['did'] = 'nothing';
  if (!(await hasImage(docker, tag))) {
    const tarball = join(opts.cacheDir ?? join(berthCacheDir(), 'host-image'), `${hash}.tar`);
    did = 'import';
    await withLock(`${tarball}.lock`, async () => {
      if (existsSync(tarball)) return;
      did = 'build+import';
      await buildRootfs(r, tarball);
    });
    await importTarball(docker, tarball, tag);
  }
  // Point the alias at this build: cheap, and repairs an alias left on an older recipe.
  const [repo, aliasTag] = alias.split(':');
  await docker.getImage(tag).tag({ repo, tag: aliasTag });
  return { tag, alias, did, ms: Date.now() - started };
}

async function hasImage(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

/** mmdebstrap into a temporary file, renamed into place when complete: an interrupted build leaves no tarball. */
async function buildRootfs(r: ReturnType<typeof recipe>, tarball: string): Promise<void> {
  mkdirSync(dirname(tarball), { recursive: true });
  const work = mkdtempSync(`${tarball}.build-`);
  try {
    const overlayDir = join(work, 'overlay');
    for (const [path, file] of Object.entries(r.overlay)) {
      mkdirSync(dirname(join(overlayDir, path)), { recursive: true });
      writeFileSync(join(overlayDir, path), file.content);
      chmodSync(join(overlayDir, path), file.mode);
    }
    const mirrors: string[] = [];
    if (r.sources !== undefined) {
      writeFileSync(join(work, 'debian.sources'), r.sources);
      mirrors.push(join(work, 'debian.sources'));
    }
    const out = join(work, 'rootfs.tar');
    const logFile = `${tarball}.build.log`;
    const args = [
      `--variant=${r.variant}`,
      `--include=${r.packages.join(',')}`,
      `--customize-hook=sync-in ${overlayDir} /`,
      // Each machine makes its own host keys at first boot (berth-host-init); none may ship in the image.
      '--customize-hook=rm -f "$1"/etc/ssh/ssh_host_*',
      r.suite,
      out,
      ...mirrors,
    ];
    const log = openSync(logFile, 'w');
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn('mmdebstrap', args, { stdio: ['ignore', log, log] });
      child.once('error', (err) => reject(new Error(`cannot run mmdebstrap: ${err.message}; install Debian's mmdebstrap (scripts/setup.sh does)`)));
      child.once('exit', (c) => resolve(c ?? 1));
    });
    if (code !== 0) {
      const tail = readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-15).join('\n');
      throw new Error(`mmdebstrap failed (exit ${code}); the end of ${logFile}:\n${tail}`);
    }
    renameSync(out, tarball);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function importTarball(docker: Docker, tarball: string, tag: string): Promise<void> {
  const [repo, version] = tag.split(':');
  const stream = await docker.importImage(tarball, { repo, tag: version, changes: 'ENTRYPOINT ["/usr/local/sbin/berth-host-init"]' });
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, events: { error?: string }[]) => {
      const failure = err?.message ?? events.find((e) => e.error)?.error;
      if (failure) reject(new Error(`docker import of ${tarball} as ${tag} failed: ${failure}`));
      else resolve();
    }),
  );
}

/**
 * One builder at a time across processes (parallel test files): a lock directory holding the owner's pid; a lock
 * whose owner is gone is taken over.
 */
async function withLock(lockDir: string, fn: () => Promise<void>): Promise<void> {
  mkdirSync(dirname(lockDir), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // No pid yet: the owner is between creating the lock and writing it.
      const owner = existsSync(join(lockDir, 'pid')) ? Number(readFileSync(join(lockDir, 'pid'), 'utf8')) : 0;
      if (owner && !isAlive(owner)) rmSync(lockDir, { recursive: true, force: true });
      else await sleep(500);
    }
  }
  try {
    await fn();
  } finally {
    rmSync(join(lockDir, 'pid'), { force: true });
    rmdirSync(lockDir);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

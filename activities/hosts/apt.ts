import type { SshSession } from './session.ts';

/** The packages of `packages` that dpkg does not have installed. */
async function missingPackages(session: SshSession, packages: string[]): Promise<string[]> {
  const script = `for p in "$@"; do [ "$(dpkg-query -W -f='\${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || echo "$p"; done`;
  return (await session.run(script, { args: packages, what: `dpkg-query ${packages.join(' ')}` })).split('\n').filter(Boolean);
}

/**
 * apt-get install, refreshing the package lists first when they are missing (a fresh image) or older than six
 * hours; waits for another apt (unattended-upgrades) instead of failing on its lock.
 */
async function aptInstall(session: SshSession, packages: string[]): Promise<void> {
  const script = `set -e
export DEBIAN_FRONTEND=noninteractive
find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -360 | grep -q . || apt-get -q -o DPkg::Lock::Timeout=120 update >/dev/null
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=120 "$@" >/dev/null`;
  await session.run(script, { args: packages, timeoutMs: 10 * 60_000, what: `apt-get install ${packages.join(' ')}` });
}

/** A probe's view of packages: one line per package not installed. */
export async function packageDrift(session: SshSession, packages: string[]): Promise<string[]> {
  return (await missingPackages(session, packages)).map((p) => `${p} was not installed`);
}

/** Installs whichever of `packages` are missing; nothing when all are there. */
export async function ensurePackages(session: SshSession, packages: string[]): Promise<void> {
  const missing = await missingPackages(session, packages);
  if (missing.length > 0) await aptInstall(session, missing);
}

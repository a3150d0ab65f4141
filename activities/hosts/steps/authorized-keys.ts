import type { StepDef } from './step.ts';

// The user comes first, the keys after it. A user that does not exist fails the step: it is not created here.
const home = `user=$1; shift
home=$(getent passwd "$user" | cut -d: -f6)
[ -n "$home" ] || { echo "no user $user on this host" >&2; exit 2; }
keys="$home/.ssh/authorized_keys"`;

const probe = `${home}
for k in "$@"; do grep -qxF -- "$k" "$keys" 2>/dev/null || printf '%s\\n' "$k"; done`;

// Keys already there, and any others the file holds, are kept.
const apply = `set -e
${home}
mkdir -p "$home/.ssh"
for k in "$@"; do grep -qxF -- "$k" "$keys" 2>/dev/null || printf '%s\\n' "$k" >> "$keys"; done
chmod 0700 "$home/.ssh"; chmod 0600 "$keys"; chown -R "$user:" "$home/.ssh"`;

/** SSH public keys in a user's authorized_keys. */
export const authorizedKeysStep: StepDef<'authorized-keys'> = {
  summary: (spec) => `${spec.keys.length} key(s) for ${spec.user}`,
  async probe(session, spec) {
    const missing = (await session.run(probe, { args: [spec.user, ...spec.keys], what: `probe authorized keys of ${spec.user}` })).split('\n').filter(Boolean);
    // A key is named by its type and the end of its blob: enough to tell keys apart, short in a report.
    return missing.map((k) => `${spec.user} lacked key ${k.split(' ')[0]} ...${(k.split(' ')[1] ?? '').slice(-12)}`);
  },
  async apply(session, spec) {
    await session.run(apply, { args: [spec.user, ...spec.keys], what: `add authorized keys for ${spec.user}` });
  },
};

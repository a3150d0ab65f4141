import type { SshSession } from './session.ts';

/** A file's content, or undefined when it does not exist. */
export async function readFile(session: SshSession, path: string): Promise<string | undefined> {
  const r = await session.exec('[ -e "$1" ] || exit 3; cat "$1"', { args: [path], what: `read ${path}` });
  if (r.code === 3) return undefined;
  if (r.code !== 0) throw new Error(`cannot read ${path}: ${r.stderr.trim()}`);
  return r.stdout;
}

export interface FileAttributes {
  /** Octal, as chmod takes it. */
  mode?: string;
  owner?: string;
  group?: string;
}

// $1 the upload, $2 the file, $3 mode, $4 owner, $5 group. The new file gets its owner and mode beside the old one
// and is renamed over it (mv -T: never into a directory of that name); the upload is removed whatever happens.
const install = `set -e
staged=$1 path=$2 tmp=
trap 'rm -f "$staged" \${tmp:+"$tmp"}' EXIT
mkdir -p "$(dirname "$path")"
tmp=$(mktemp "$path.berth-XXXXXX")
cat "$staged" > "$tmp"
chown "$4:$5" "$tmp"
chmod "$3" "$tmp"
mv -fT "$tmp" "$path"`;

/**
 * Replaces a file atomically, a reader never seeing half of it: the content goes over SFTP to the SSH user's home,
 * then as root into a temporary file beside the target, which gets its owner and mode and is renamed over it.
 */
export async function writeFile(session: SshSession, path: string, content: string | Buffer, { mode = '0644', owner = 'root', group = 'root' }: FileAttributes = {}): Promise<void> {
  const staged = await session.upload(Buffer.from(content), { what: path });
  await session.run(install, { args: [staged, path, mode, owner, group], what: `install ${path}` });
}

/** Whether a file holds exactly `content`. */
export async function hasContent(session: SshSession, path: string, content: string): Promise<boolean> {
  return (await session.exec('cmp -s - "$1"', { args: [path], input: content, what: `compare ${path}` })).code === 0;
}

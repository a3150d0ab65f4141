import type { SshSession } from './session.ts';

/** A file's content, or undefined when it does not exist. */
export async function readFile(session: SshSession, path: string): Promise<string | undefined> {
  const r = await session.exec('[ -e "$1" ] || exit 3; cat "$1"', { args: [path], what: `read ${path}` });
  if (r.code === 3) return undefined;
  if (r.code !== 0) throw new Error(`cannot read ${path}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Replaces a file atomically (a temporary file renamed over it): a reader never sees half of it. */
export async function writeFile(session: SshSession, path: string, content: string, mode = '0644'): Promise<void> {
  const script = 'set -e; mkdir -p "$(dirname "$1")"; tmp=$(mktemp "$1.berth-XXXXXX"); cat > "$tmp"; chmod "$2" "$tmp"; mv -f "$tmp" "$1"';
  await session.run(script, { args: [path, mode], input: content, what: `write ${path}` });
}

/** Whether a file holds exactly `content`. */
export async function hasContent(session: SshSession, path: string, content: string): Promise<boolean> {
  return (await session.exec('cmp -s - "$1"', { args: [path], input: content, what: `compare ${path}` })).code === 0;
}

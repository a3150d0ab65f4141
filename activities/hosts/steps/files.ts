import { createHash } from 'node:crypto';
import { readSecret } from '../../../config/secrets.ts';
import { HostError } from '../errors.ts';
import { writeFile } from '../files.ts';
import type { SshSession } from '../session.ts';
import type { FileEntry } from './files.schema.ts';
import type { StepDef } from './step.ts';

/** An entry with what the file must hold, its secret resolved here, in the worker (never in a report). */
interface Wanted extends FileEntry {
  bytes: Buffer;
  sha256: string;
  /** As stat prints it: octal without a leading zero (`644`, `2750`). */
  statMode: string;
}

function wanted(entry: FileEntry): Wanted {
  let text = entry.content;
  if (text === undefined) {
    try {
      text = readSecret(entry.contentFrom!, `the content of ${entry.path}`);
    } catch (err) {
      throw new HostError('SecretUnavailable', (err as Error).message);
    }
  }
  const bytes = Buffer.from(text);
  return { ...entry, bytes, sha256: createHash('sha256').update(bytes).digest('hex'), statMode: parseInt(entry.mode, 8).toString(8) };
}

// Five arguments per file: path, sha256, mode, owner, group. One line per file that differs: the path, a tab, how.
const probe = `while [ $# -gt 0 ]; do
  if [ ! -e "$1" ]; then printf '%s\\tdid not exist\\n' "$1"
  elif [ ! -f "$1" ]; then printf '%s\\twas not a regular file\\n' "$1"
  else
    [ "$(sha256sum < "$1" | cut -d' ' -f1)" = "$2" ] || printf '%s\\thad other content\\n' "$1"
    now=$(stat -c '%a %U:%G' "$1")
    [ "$now" = "$3 $4:$5" ] || printf '%s\\twas %s\\n' "$1" "$now"
  fi
  shift 5
done`;

/** How each file differs from what it must be: path -> differences (a file as wanted is absent). */
async function drift(session: SshSession, files: Wanted[]): Promise<Map<string, string[]>> {
  const args = files.flatMap((f) => [f.path, f.sha256, f.statMode, f.owner, f.group]);
  const out = await session.run(probe, { args, what: `probe ${files.length} file(s)` });
  const found = new Map<string, string[]>();
  for (const line of out.split('\n').filter(Boolean)) {
    const [path, how] = line.split('\t');
    found.set(path, [...(found.get(path) ?? []), how]);
  }
  return found;
}

/**
 * Whole files with their mode and owner (Ansible's copy): compared by sha256 on the host, uploaded over SFTP only
 * when they differ and renamed into place atomically. Content comes from berth.yaml or from a secret by reference,
 * read by the worker that writes it; reports name paths and never content.
 */
export const filesStep: StepDef<'files'> = {
  summary: (spec) => `files ${spec.map((f) => `${f.path} (${f.mode} ${f.owner}:${f.group})`).join(', ')}`,
  async probe(session, spec) {
    const found = await drift(session, spec.map(wanted));
    return [...found].flatMap(([path, hows]) => hows.map((how) => `${path} ${how}`));
  },
  async apply(session, spec) {
    const files = spec.map(wanted);
    const found = await drift(session, files);
    for (const f of files.filter((f) => found.has(f.path))) {
      await writeFile(session, f.path, f.bytes, { mode: f.mode, owner: f.owner, group: f.group });
    }
  },
};

import type Docker from 'dockerode';

// Container labels cannot change after create, so tags added later live in a file inside the container: they go
// where the machine goes, and the engine's archive API reaches them whether the container runs or not.
const dir = '/etc/berth';
const name = 'tags.json';

export async function readTagsFile(container: Docker.Container): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of await container.getArchive({ path: `${dir}/${name}` })) chunks.push(Buffer.from(chunk as Buffer));
  const content = firstFile(Buffer.concat(chunks));
  return content ? (JSON.parse(content.toString('utf8')) as Record<string, string>) : {};
}

export async function writeTagsFile(container: Docker.Container, tags: Record<string, string>): Promise<void> {
  await container.putArchive(tarOfOne(name, Buffer.from(`${JSON.stringify(tags, null, 2)}\n`)), { path: dir });
}

/** A ustar archive of one regular file: all the archive API needs, without a tar dependency. */
function tarOfOne(fileName: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, '0')}\0`;
  header.write(fileName, 0);
  header.write(octal(0o644, 8), 100);
  header.write(octal(0, 8), 108);
  header.write(octal(0, 8), 116);
  header.write(octal(content.length, 12), 124);
  header.write(octal(Math.floor(Date.now() / 1000), 12), 136);
  header.write('        ', 148); // the checksum counts its own field as spaces
  header.write('0', 156);
  header.write('ustar\x0000', 257);
  header.write(
    `${octal(
      header.reduce((sum, b) => sum + b, 0),
      7,
    )} `,
    148,
  );
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

/** The content of the first regular file in a tar archive (skipping pax and other headers). */
function firstFile(tar: Buffer): Buffer | undefined {
  for (let at = 0; at + 512 <= tar.length;) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) return undefined;
    const size = parseInt(header.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
    const type = header.toString('latin1', 156, 157);
    if (type === '0' || type === '\0') return tar.subarray(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return undefined;
}

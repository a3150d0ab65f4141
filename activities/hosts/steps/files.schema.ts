import { z } from 'zod';
import { secretRef } from '../../../config/fields.ts';

const absolutePath = z
  .string()
  // eslint-disable-next-line no-control-regex -- control characters are exactly what the path must not hold
  .regex(/^\/[^\x00-\x1f]*[^/\x00-\x1f]$/, 'must be an absolute path to a file (starting with /, not ending with /, no control characters)')
  .refine((p) => !p.split('/').includes('..'), { error: 'must not contain .. segments' });

// YAML 1.2 reads an unquoted 0644 as the decimal number 644: only a string keeps the octal digits as written.
const octalMode = z.string({ error: 'must be an octal mode in quotes, like "0644" (unquoted, YAML reads 0644 as the number 644)' }).regex(/^0?[0-7]{3,4}$/, 'must be an octal mode like "0644" or "2750"');

const unixName = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a Unix user or group name');

export const fileEntrySchema = z
  .object({
    path: absolutePath,
    /** The file's text, as written in berth.yaml. */
    content: z.string().optional(),
    /** Or a secret's value, by reference (resolved by the worker that writes it; never in a workflow's history). */
    contentFrom: secretRef("a file's content")
      .refine((r) => r.file === undefined || r.file.startsWith('/'), { error: 'must be an absolute path', path: ['file'] })
      .optional(),
    mode: octalMode.default('0644'),
    owner: unixName.default('root'),
    group: unixName.default('root'),
  })
  .strict()
  .refine((f) => (f.content === undefined) !== (f.contentFrom === undefined), { error: 'set exactly one of content or contentFrom' });

/** `files: [{ path, content | contentFrom, mode, owner, group }, ...]`: whole files, uploaded over SFTP. */
export const filesSchema = z
  .array(fileEntrySchema)
  .min(1)
  .superRefine((files, ctx) => {
    const seen = new Set<string>();
    files.forEach((f, i) => {
      if (seen.has(f.path)) ctx.addIssue({ code: 'custom', path: [i, 'path'], message: `${f.path} is listed twice` });
      seen.add(f.path);
    });
  });

export type FileEntry = z.infer<typeof fileEntrySchema>;

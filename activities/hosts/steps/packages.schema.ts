import { z } from 'zod';

/** `packages: [name, ...]`: Debian packages. */
export const packagesSchema = z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]*$/, 'must be a Debian package name')).min(1);

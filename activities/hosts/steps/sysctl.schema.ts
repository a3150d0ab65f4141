import { z } from 'zod';

/** `sysctl: { key: value, ... }`: kernel parameters. */
export const sysctlSchema = z.record(z.string().regex(/^[a-z0-9_.-]+$/, 'must be a sysctl key'), z.union([z.string(), z.number()]));

import { z } from 'zod';
import { resourceName } from '../../../config/fields.ts';

/** `provider: { kind: static, hosts }`: a pool of hosts that exist already, allocated one request at a time. */
export const staticProviderSchema = z
  .object({
    kind: z.literal('static'),
    hosts: z.array(z.object({ name: resourceName, address: z.string().min(1), sshPort: z.number().int().min(1).max(65535).default(22), instanceType: z.string().default('physical') }).strict()).min(1),
  })
  .strict();

export type StaticProviderConfig = z.infer<typeof staticProviderSchema>;

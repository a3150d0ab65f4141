import { z } from 'zod';

/** `hostname: { name? }`: the machine's name when not given. */
export const hostnameSchema = z.object({ name: z.string().min(1).optional() }).strict();

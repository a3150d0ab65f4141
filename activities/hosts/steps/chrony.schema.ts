import { z } from 'zod';

/** `chrony: { servers }`: NTP servers in place of the Debian pool. */
export const chronySchema = z.object({ servers: z.array(z.string().min(1)).min(1) }).strict();

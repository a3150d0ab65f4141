import { z } from 'zod';

/** `authorized-keys: { user, keys }`: public keys added to a user's authorized_keys. */
export const authorizedKeysSchema = z.object({ user: z.string().min(1).default('root'), keys: z.array(z.string().min(1)).min(1) }).strict();

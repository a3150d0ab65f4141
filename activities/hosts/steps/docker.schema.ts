import { z } from 'zod';

/** `docker: { mirror, logMaxSize, logMaxFiles }`: the engine's daemon.json. */
export const dockerSchema = z
  .object({
    /** Point the engine's registry mirror at the machine's IDC registry. */
    mirror: z.boolean().default(true),
    logMaxSize: z.string().default('10m'),
    logMaxFiles: z.number().int().min(1).default(3),
  })
  .strict();

import { z } from 'zod';

/** `script: { name, run, check }`: an operator's command with its own check. */
export const scriptSchema = z.object({ name: z.string().min(1), run: z.string().min(1), check: z.string().min(1) }).strict();

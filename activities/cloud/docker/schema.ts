import { z } from 'zod';

/** `provider: { kind: docker }`: machines as containers on a Docker engine on the worker's machine. */
export const dockerProviderSchema = z.object({ kind: z.literal('docker'), socketPath: z.string().default('/var/run/docker.sock'), image: z.string().default('berth-host:bookworm') }).strict();

export type DockerProviderConfig = z.infer<typeof dockerProviderSchema>;

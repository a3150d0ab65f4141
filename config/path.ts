import { fileURLToPath } from 'node:url';

/** The embedded default, used when BERTH_CONFIG does not name another file. */
export const exampleConfigPath = fileURLToPath(new URL('../berth.example.yaml', import.meta.url));

export function configPath(): string {
  return process.env.BERTH_CONFIG || exampleConfigPath;
}

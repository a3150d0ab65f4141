/** How a command ended, as scripts see it: the process exit code. */
export const exitCodes = { ok: 0, failed: 1, usage: 2, denied: 3, notFound: 4, unavailable: 5 } as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

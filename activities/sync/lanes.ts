/** Runs `step` on `n` lanes while `more()` says so; after a failure, the other lanes stop at their next step. */
export async function lanes(n: number, more: () => boolean, step: () => Promise<void>): Promise<void> {
  let failed = false;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (!failed && more()) {
        try {
          await step();
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    }),
  );
}

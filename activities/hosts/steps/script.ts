import type { StepDef } from './step.ts';

const timeoutMs = 5 * 60_000;

/**
 * A custom command with its own check: `check` exits 0 when the host is already as wanted, so `run` runs only
 * when it does not, and `check` must pass after it.
 */
export const scriptStep: StepDef<'script'> = {
  label: (spec) => `script:${spec.name}`,
  summary: (spec) => `script ${spec.name}`,
  async probe(session, spec) {
    const r = await session.exec(spec.check, { timeoutMs, what: spec.check });
    return r.code === 0 ? [] : [`check \`${spec.check}\` exited ${r.code}`];
  },
  async apply(session, spec) {
    await session.run(spec.run, { timeoutMs, what: spec.run });
  },
};

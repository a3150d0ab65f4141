import { HostError } from '../errors.ts';
import type { InitContext, StepDef } from './step.ts';

const timeoutMs = 5 * 60_000;

/**
 * A custom command with its own check: `check` exits 0 when the host is already as wanted, so `run` runs only
 * when it does not, and `check` must pass after it. Scripts are the operator's own text and may print anything:
 * known secrets are taken out of the command text and stderr before either reaches a failure or a report.
 */
export const scriptStep: StepDef<'script'> = {
  label: (spec) => `script:${spec.name}`,
  summary: (spec) => `script ${spec.name}`,
  async probe(session, spec, ctx) {
    const redact = redactor(ctx);
    const r = await redacting(redact, () => session.exec(spec.check, { timeoutMs, what: redact(spec.check) }));
    return r.code === 0 ? [] : [`check \`${redact(spec.check)}\` exited ${r.code}`];
  },
  async apply(session, spec, ctx) {
    const redact = redactor(ctx);
    await redacting(redact, () => session.run(spec.run, { timeoutMs, what: redact(spec.run) }));
  },
};

const redactor = (ctx: InitContext) => ctx.redact ?? ((text: string) => text);

/** Runs a command; its failure is raised again with secrets taken out, and without the original as its cause. */
async function redacting<T>(redact: (text: string) => string, command: () => Promise<T>): Promise<T> {
  try {
    return await command();
  } catch (err) {
    if (!(err instanceof HostError)) throw err;
    const stderr = err.opts.stderr === undefined ? undefined : redact(err.opts.stderr);
    throw new HostError(err.type, redact(err.message), { step: err.opts.step, stderr });
  }
}

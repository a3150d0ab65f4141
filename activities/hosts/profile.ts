import type { InitStep } from '../../config/schema.ts';
import { HostError } from './errors.ts';
import type { SshSession } from './session.ts';
import { steps } from './steps/index.ts';
import type { InitContext, StepDef, StepKind } from './steps/step.ts';

export interface StepResult {
  step: string;
  status: 'changed' | 'ok';
  /** What the step sets, and for a change what differed before it (and what it could not do on this host). */
  detail: string;
}

/**
 * Runs a profile's steps in order, each probe -> apply only when needed -> verify, and reports each `changed` or
 * `ok`: a second run on the same host reports every step `ok`. Stops at the first failure with an error naming the
 * step and the command's stderr (InitStepFailed), or the transient fault that interrupted it (retryable: every step
 * is idempotent, so the whole profile can run again).
 */
export async function runInitProfile(session: SshSession, profile: InitStep[], ctx: InitContext, onStep?: (result: StepResult) => void): Promise<StepResult[]> {
  const results: StepResult[] = [];
  for (const [i, step] of profile.entries()) {
    const kind = Object.keys(step)[0] as StepKind;
    const spec = (step as Record<StepKind, unknown>)[kind] as never;
    const def = steps[kind] as StepDef<StepKind>;
    const name = def.label?.(spec) ?? kind;
    let result: StepResult;
    try {
      const summary = def.summary(spec, ctx);
      const drift = await def.probe(session, spec, ctx);
      if (drift.length === 0) {
        result = { step: name, status: 'ok', detail: summary };
      } else {
        const note = await def.apply(session, spec, ctx);
        const left = await def.probe(session, spec, ctx);
        if (left.length > 0) throw new HostError('InitStepFailed', `still not as wanted after applying: ${left.join('; ')}`);
        result = { step: name, status: 'changed', detail: `${summary} (${drift.join('; ')})${note ? `; ${note}` : ''}` };
      }
    } catch (err) {
      throw stepFailure(i, name, err);
    }
    results.push(result);
    onStep?.(result);
  }
  return results;
}

function stepFailure(index: number, name: string, err: unknown): HostError {
  const message = `init step ${index + 1} (${name}) failed: ${(err as Error).message}`;
  if (err instanceof HostError && err.retryable) return new HostError(err.type, message, { step: name, cause: err });
  return new HostError('InitStepFailed', message, { step: name, stderr: err instanceof HostError ? err.opts.stderr : undefined, cause: err });
}

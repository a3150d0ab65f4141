import { ensurePackages, packageDrift } from '../apt.ts';
import type { StepDef } from './step.ts';

/** Debian packages, installed with apt when missing (never upgraded: that is another operation). */
export const packagesStep: StepDef<'packages'> = {
  summary: (spec) => `packages ${spec.join(' ')}`,
  probe: (session, spec) => packageDrift(session, spec),
  async apply(session, spec) {
    await ensurePackages(session, spec);
  },
};

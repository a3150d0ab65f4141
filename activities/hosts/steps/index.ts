import { authorizedKeysStep } from './authorized-keys.ts';
import { chronyStep } from './chrony.ts';
import { dockerStep } from './docker.ts';
import { filesStep } from './files.ts';
import { hostnameStep } from './hostname.ts';
import { packagesStep } from './packages.ts';
import { scriptStep } from './script.ts';
import type { StepDef, StepKind } from './step.ts';
import { sysctlStep } from './sysctl.ts';

/** The registry of init steps' code, under the keys of their schemas in schemas.ts: a new kind is its two files and a line in each. */
export const steps: { [K in StepKind]: StepDef<K> } = {
  hostname: hostnameStep,
  chrony: chronyStep,
  sysctl: sysctlStep,
  docker: dockerStep,
  'authorized-keys': authorizedKeysStep,
  packages: packagesStep,
  script: scriptStep,
  files: filesStep,
};

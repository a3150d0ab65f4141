import { authorizedKeysSchema } from './authorized-keys.schema.ts';
import { chronySchema } from './chrony.schema.ts';
import { dockerSchema } from './docker.schema.ts';
import { filesSchema } from './files.schema.ts';
import { hostnameSchema } from './hostname.schema.ts';
import { packagesSchema } from './packages.schema.ts';
import { scriptSchema } from './script.schema.ts';
import { sysctlSchema } from './sysctl.schema.ts';

/**
 * The registry of init steps' config schemas, by the key a step has in berth.yaml (`- sysctl: {...}`): config
 * composes initProfiles from it, and steps/index.ts holds each kind's code under the same key. Pure zod: config
 * imports this file, never the steps' code (SSH).
 */
export const stepSchemas = {
  hostname: hostnameSchema,
  chrony: chronySchema,
  sysctl: sysctlSchema,
  docker: dockerSchema,
  'authorized-keys': authorizedKeysSchema,
  packages: packagesSchema,
  script: scriptSchema,
  files: filesSchema,
};

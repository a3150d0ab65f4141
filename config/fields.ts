import { z } from 'zod';

/**
 * Field types shared by berth.yaml's sections and by the schemas providers and init steps declare beside their code
 * (activities/cloud/schemas.ts, activities/hosts/steps/schemas.ts): pure zod, so any layer may import them.
 */

/** Names of IDCs and registries: they appear in task queues, workflow IDs and URLs. */
export const resourceName = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be lowercase letters, digits and dashes (1-63 chars)');

export const envVarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name');

/** A secret by reference: the env var or file that holds it. */
export const secretRef = (what: string) =>
  z
    .object({ env: envVarName.optional(), file: z.string().min(1).optional() })
    .strict()
    .refine((r) => (r.env === undefined) !== (r.file === undefined), { error: `set exactly one of env or file for ${what}` });

/**
 * One of several schemas, chosen by the single key of the object (`{ sysctl: {...} }`): a union discriminated by
 * its key, so an error inside the chosen one names its own path (`[0].sysctl.vm_x`), and an unknown key is named
 * as such, where a plain union would only say that no member matched.
 */
export function keyedUnion<S extends Record<string, z.ZodType>>(schemas: S, what: string) {
  const kinds = Object.keys(schemas);
  const shape = Object.fromEntries(kinds.map((k) => [k, schemas[k].optional()])) as { [K in keyof S]: z.ZodOptional<S[K]> };
  return z
    .strictObject(shape)
    .refine((o) => Object.values(o).filter((spec) => spec !== undefined).length === 1, { error: `each ${what} is an object of one key, one of: ${kinds.join(', ')}`, abort: true })
    .transform((o) => o as unknown as KeyedUnion<S>);
}

type KeyedUnion<S extends Record<string, z.ZodType>> = { [K in keyof S]: { [P in K]: z.output<S[K]> } }[keyof S];

import { awsProviderSchema } from './aws/schema.ts';
import { dockerProviderSchema } from './docker/schema.ts';
import { staticProviderSchema } from './static/schema.ts';

/**
 * The registry of providers' config schemas, each discriminated by its `kind`: config composes a cluster's
 * `provider` from it, and index.ts holds each kind's factory. Pure zod: config imports this file, never the
 * providers' code (dockerode, the AWS SDK).
 */
export const providerSchemas = [dockerProviderSchema, staticProviderSchema, awsProviderSchema] as const;

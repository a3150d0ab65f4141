import { z } from 'zod';
import { secretRef } from '../../../config/fields.ts';

/** `provider: { kind: aws, ... }`: EC2 instances; the keys by reference. */
export const awsProviderSchema = z
  .object({
    kind: z.literal('aws'),
    region: z.string().min(1),
    /** An EC2-compatible endpoint (moto in the tests); AWS's own when not given. */
    endpoint: z.url().optional(),
    imageId: z.string().min(1),
    subnetId: z.string().min(1).optional(),
    accessKeyId: secretRef('the AWS access key id'),
    secretAccessKey: secretRef('the AWS secret access key'),
  })
  .strict();

export type AwsProviderConfig = z.infer<typeof awsProviderSchema>;

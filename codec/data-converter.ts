import { fileURLToPath } from 'node:url';
import type { ClientOptions, WorkflowClientInterceptor } from '@temporalio/client';
import type { DataConverter, SearchAttributePair } from '@temporalio/common';
import type { BerthConfig } from '../config/load.ts';
import { readSecret } from '../config/secrets.ts';
import { BerthProject } from '../contracts/search-attributes.ts';
import { AesGcmCodec } from './aes-gcm-codec.ts';
import { workflowProjects, type WorkflowProjects } from './workflow-projects.ts';

/** Where the SDK loads the failure converter from: in workers, clients and the workflow bundle alike. */
export const failureConverterPath = fileURLToPath(new URL('./failure-converter.ts', import.meta.url));

/** The payload codec of berth.yaml's `encryption`, or none when it is not configured. */
export function payloadCodec(config: BerthConfig, projects: WorkflowProjects = workflowProjects): AesGcmCodec | undefined {
  const encryption = config.encryption;
  if (!encryption) return undefined;
  const keys = new Map(encryption.keys.map((k) => [k.id, Buffer.from(readSecret(k.key, `encryption key ${k.id}`).trim(), 'base64')]));
  return new AesGcmCodec(keys, encryption.currentKey, projects);
}

/**
 * What every client and worker of berth passes to Temporal: when berth.yaml says so, payloads are encrypted, and
 * failures' messages and stack traces with them (a failure may quote what a registry or a host answered).
 */
export function dataConverter(config: BerthConfig): DataConverter {
  const codec = payloadCodec(config);
  return codec ? { payloadCodecs: [codec], failureConverterPath } : {};
}

/**
 * A client that starts berth's workflows: its data converter, and an interceptor that notes each started
 * workflow's project (its BerthProject search attribute), so that its payloads are labelled with it.
 */
export function clientOptions(config: BerthConfig): Pick<ClientOptions, 'dataConverter' | 'interceptors'> {
  const noteProject: WorkflowClientInterceptor = {
    async startWithDetails(input, next) {
      const attributes = input.options.typedSearchAttributes;
      const pairs: SearchAttributePair[] = Array.isArray(attributes) ? attributes : (attributes?.getAll() ?? []);
      const project = pairs.find((p) => p.key.name === BerthProject.name)?.value;
      if (typeof project === 'string') workflowProjects.remember(input.options.workflowId, project);
      return next(input);
    },
  };
  return { dataConverter: dataConverter(config), interceptors: { workflow: [noteProject] } };
}

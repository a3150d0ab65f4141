import type { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { setTimeout as sleep } from 'node:timers/promises';
import { berthSearchAttributes } from '../contracts/search-attributes.ts';

const IndexedValueType = proto.temporal.api.enums.v1.IndexedValueType;
const types = { KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD, KEYWORD_LIST: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST } as const;
const grpcInvalidArgument = 3;
const typeOf = (key: (typeof berthSearchAttributes)[number]) => types[key.type as keyof typeof types];

/**
 * Registers berth's search attributes in the namespace unless they exist (a dev server started with an older
 * database, or a production cluster, has not seen them), then waits until the server accepts them: a real server
 * takes seconds to propagate new attributes, and refuses workflows and schedules that carry them until then
 * (INVALID_ARGUMENT "no mapping defined for search attribute"). Without them no berth workflow could start.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  // One of berth's names taken with another type would refuse every berth workflow: say so before starting any.
  const clashes = berthSearchAttributes.filter((key) => customAttributes?.[key.name] && customAttributes[key.name] !== typeOf(key));
  if (clashes.length > 0) {
    const described = clashes.map((key) => `${key.name} is ${IndexedValueType[customAttributes![key.name]]}, berth needs ${IndexedValueType[typeOf(key)]}`);
    throw new Error(`search attributes of namespace ${namespace} clash with berth's: ${described.join('; ')} (remove them, or give berth its own namespace)`);
  }
  const missing = berthSearchAttributes.filter((key) => !customAttributes?.[key.name]);
  if (missing.length > 0) {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((key) => [key.name, typeOf(key)])),
    });
  }
  // A visibility query naming every attribute is refused until the server maps them all.
  const query = berthSearchAttributes.map((key) => `${key.name} = 'berth-start-probe'`).join(' AND ');
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    try {
      await connection.workflowService.countWorkflowExecutions({ namespace, query });
      return;
    } catch (err) {
      if ((err as { code?: number }).code !== grpcInvalidArgument) throw err;
      if (Date.now() > deadline) {
        throw new Error(`berth's search attributes (${berthSearchAttributes.map((k) => k.name).join(', ')}) are registered in namespace ${namespace} but the server still refuses them: ${(err as Error).message}`);
      }
    }
    await sleep(250);
  }
}

import type { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { berthSearchAttributes } from '../workflows/search-attributes.ts';

const IndexedValueType = proto.temporal.api.enums.v1.IndexedValueType;
const types = { KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD, KEYWORD_LIST: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST } as const;

/**
 * Registers berth's search attributes in the namespace unless they exist: a dev server started with an older
 * database, or a production cluster, has not seen them. Without them no berth workflow could start.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = berthSearchAttributes.filter((key) => !customAttributes?.[key.name]);
  if (missing.length === 0) return;
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(missing.map((key) => [key.name, types[key.type as keyof typeof types]])),
  });
}

import type { Inventory } from './db.ts';

/** This inventory's installation id (made by its migration): what the providers tag every machine with. */
export async function installationId(db: Inventory): Promise<string> {
  const row = await db.selectFrom('installation').select('id').orderBy('created_at').executeTakeFirstOrThrow();
  return row.id;
}

import type { Kysely } from 'kysely';
import type { Inventory } from '../../activities/inventory/db.ts';
import { AuthStore, type AuthTables } from './store.ts';

/** The API's user store, in the inventory database (its tables come from migration 0050_access). */
export function authStore(inventory: Inventory): AuthStore {
  return new AuthStore(inventory as unknown as Kysely<AuthTables>);
}

/**
 * On a first start with no users, creates the platform admin `admin` and returns its token: the one time anyone
 * sees it. Later starts return nothing.
 */
export async function ensureFirstAdmin(auth: AuthStore): Promise<string | undefined> {
  if ((await auth.userCount()) > 0) return undefined;
  const id = await auth.createUser('admin', true);
  return (await auth.issueToken(id, 'first admin, created on first start', null)).token;
}

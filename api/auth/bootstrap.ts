import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Kysely } from 'kysely';
import type { Inventory } from '../../inventory/db.ts';
import { AuthStore, type AuthTables } from './store.ts';
import { newToken } from './tokens.ts';

/** The API's user store, in the inventory database (its tables come from migration 0050_access). */
export function authStore(inventory: Inventory): AuthStore {
  return new AuthStore(inventory as unknown as Kysely<AuthTables>);
}

/**
 * On a first start with no users, creates the platform admin `admin` and returns its token: the one time anyone
 * sees it. The token is handed over (`handOver`) before the admin is committed, so a start that fails on the way
 * leaves no admin behind and the next start makes one again. Later starts return nothing.
 */
export async function ensureFirstAdmin(auth: AuthStore, handOver: (token: string) => void = () => undefined): Promise<string | undefined> {
  if ((await auth.userCount()) > 0) return undefined;
  const { token } = newToken();
  await auth.createFirstAdmin(token, 'first admin, created on first start', () => handOver(token));
  return token;
}

/**
 * Where the first admin's token is written when nobody watches the terminal: beside a SQLite inventory (`.berth/`
 * for `npm start`), else (an inventory in PostgreSQL) in the home of the user the API runs as (`/var/lib/berth` in
 * the image).
 */
export function firstAdminTokenFile(config: { inventory: { sqliteFile?: string } }): string {
  const dir = config.inventory.sqliteFile ? dirname(config.inventory.sqliteFile) : join(homedir(), '.berth');
  return join(dir, 'secrets', 'first-admin-token');
}

/**
 * The first admin's token to the operator: printed when stdout is a terminal, which someone reads; otherwise (a
 * supervisor's log, a container, CI, where logs are kept and shipped) written to a file only this user can read,
 * and the log says where. Returns what to print.
 */
export function handOverFirstAdminToken(token: string, file: string, tty = process.stdout.isTTY === true): string {
  if (tty) return `First start: berth created the platform admin "admin". Its token, shown this once (keep it):\n  export BERTH_TOKEN=${token}`;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // A fresh file: one left from an earlier installation may be readable by others.
  rmSync(file, { force: true });
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return `First start: berth created the platform admin "admin"; its token is in ${file} (readable by this user only; stdout is not a terminal): export BERTH_TOKEN=$(cat ${file})`;
}

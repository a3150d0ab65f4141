import { sql, type Generated, type Kysely } from 'kysely';
import type { Principal, Role } from './access.ts';
import { hashToken, newToken } from './tokens.ts';

/** The tables of inventory/migrations/0050_access.ts; times are epoch milliseconds, as elsewhere. */
export interface AuthTables {
  users: { id: Generated<number>; name: string; platform_admin: number; created_at: number };
  memberships: { user_id: number; project: string; role: string };
  api_tokens: { id: Generated<number>; user_id: number; hash: string; label: string; created_at: number; expires_at: number | null; revoked_at: number | null };
  audit_log: { id: Generated<number>; at: number; principal: string; action: string; target: string; source: string; status: number; outcome: string; detail: string | null };
}

export interface AuditEntry {
  at: Date;
  principal: string;
  action: string;
  target: string;
  source: string;
  status: number;
  outcome: string;
  detail: string | null;
}

export interface TokenInfo {
  id: number;
  user: string;
  label: string;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

const date = (ms: number | null) => (ms === null ? null : new Date(Number(ms)));

export class AuthStore {
  constructor(private readonly db: Kysely<AuthTables>) {}

  async userCount(): Promise<number> {
    const { n } = await this.db
      .selectFrom('users')
      .select(sql<number>`count(*)`.as('n'))
      .executeTakeFirstOrThrow();
    return Number(n);
  }

  async createUser(name: string, platformAdmin: boolean): Promise<number> {
    const { id } = await this.db
      .insertInto('users')
      .values({ name, platform_admin: platformAdmin ? 1 : 0, created_at: Date.now() })
      .returning('id')
      .executeTakeFirstOrThrow();
    return id;
  }

  async userByName(name: string): Promise<{ id: number; name: string; platformAdmin: boolean } | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
    return row && { id: row.id, name: row.name, platformAdmin: row.platform_admin === 1 };
  }

  async listUsers(): Promise<{ name: string; platformAdmin: boolean; roles: Record<string, Role> }[]> {
    const users = await this.db.selectFrom('users').selectAll().orderBy('name').execute();
    const memberships = await this.db.selectFrom('memberships').selectAll().execute();
    return users.map((u) => ({
      name: u.name,
      platformAdmin: u.platform_admin === 1,
      roles: Object.fromEntries(memberships.filter((m) => m.user_id === u.id).map((m) => [m.project, m.role as Role])),
    }));
  }

  /** Sets a user's role in a project; no role removes the membership. */
  async setRole(userId: number, project: string, role: Role | null): Promise<void> {
    await this.db.deleteFrom('memberships').where('user_id', '=', userId).where('project', '=', project).execute();
    if (role) await this.db.insertInto('memberships').values({ user_id: userId, project, role }).execute();
  }

  /** A new token for a user; the token itself is returned once and never stored. */
  async issueToken(userId: number, label: string, expiresAt: Date | null): Promise<{ id: number; token: string }> {
    const { token, hash } = newToken();
    return { id: await this.storeToken(userId, hash, label, expiresAt), token };
  }

  /**
   * The platform admin `admin` and its token, handed over (`handOver`: printed or written down) before they are
   * committed: a start that fails anywhere leaves an admin whose token was handed over, or none. A second process
   * doing the same at once fails on the unique name before it hands anything over.
   */
  async createFirstAdmin(token: string, label: string, handOver: () => void): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const store = new AuthStore(trx);
      await store.storeToken(await store.createUser('admin', true), hashToken(token), label, null);
      handOver();
    });
  }

  private async storeToken(userId: number, hash: string, label: string, expiresAt: Date | null): Promise<number> {
    const { id } = await this.db
      .insertInto('api_tokens')
      .values({ user_id: userId, hash, label, created_at: Date.now(), expires_at: expiresAt?.getTime() ?? null, revoked_at: null })
      .returning('id')
      .executeTakeFirstOrThrow();
    return id;
  }

  async revokeToken(id: number): Promise<boolean> {
    const res = await this.db.updateTable('api_tokens').set({ revoked_at: Date.now() }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async tokens(userId?: number): Promise<TokenInfo[]> {
    let q = this.db.selectFrom('api_tokens').innerJoin('users', 'users.id', 'api_tokens.user_id').select(['api_tokens.id', 'users.name', 'label', 'api_tokens.created_at', 'expires_at', 'revoked_at', 'user_id']);
    if (userId !== undefined) q = q.where('user_id', '=', userId);
    return (await q.orderBy('api_tokens.id').execute()).map((t) => ({ id: t.id, user: t.name, label: t.label, createdAt: new Date(Number(t.created_at)), expiresAt: date(t.expires_at), revokedAt: date(t.revoked_at) }));
  }

  async tokenOwner(id: number): Promise<number | undefined> {
    return (await this.db.selectFrom('api_tokens').select('user_id').where('id', '=', id).executeTakeFirst())?.user_id;
  }

  /** The principal a token names, or why it names none. */
  async principal(token: string): Promise<Principal | { refused: string }> {
    const row = await this.db
      .selectFrom('api_tokens')
      .innerJoin('users', 'users.id', 'api_tokens.user_id')
      .select(['users.id as userId', 'users.name', 'users.platform_admin', 'expires_at', 'revoked_at'])
      .where('hash', '=', hashToken(token))
      .executeTakeFirst();
    if (!row) return { refused: 'unknown token' };
    if (row.revoked_at !== null) return { refused: `token revoked at ${date(row.revoked_at)!.toISOString()}` };
    if (row.expires_at !== null && Number(row.expires_at) <= Date.now()) return { refused: `token expired at ${date(row.expires_at)!.toISOString()}` };
    const memberships = await this.db.selectFrom('memberships').selectAll().where('user_id', '=', row.userId).execute();
    return { userId: row.userId, name: row.name, platformAdmin: row.platform_admin === 1, roles: Object.fromEntries(memberships.map((m) => [m.project, m.role as Role])) };
  }

  async audit(entry: AuditEntry): Promise<void> {
    await this.db
      .insertInto('audit_log')
      .values({ ...entry, at: entry.at.getTime() })
      .execute();
  }

  async auditLog(filter: { principal?: string; action?: string; outcome?: string; from?: Date; to?: Date; limit: number }) {
    let q = this.db.selectFrom('audit_log').selectAll();
    if (filter.principal) q = q.where('principal', '=', filter.principal);
    if (filter.action) q = q.where('action', '=', filter.action);
    if (filter.outcome) q = q.where('outcome', '=', filter.outcome);
    if (filter.from) q = q.where('at', '>=', filter.from.getTime());
    if (filter.to) q = q.where('at', '<', filter.to.getTime());
    const rows = await q.orderBy('id', 'desc').limit(filter.limit).execute();
    return rows.map((r) => ({ ...r, at: new Date(Number(r.at)), detail: r.detail === null ? null : JSON.parse(r.detail) }));
  }
}

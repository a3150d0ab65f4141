import type { Client } from '@temporalio/client';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { openInventory } from '../../inventory/db.ts';
import type { Role } from '../../api/auth/access.ts';
import { authStore, ensureFirstAdmin } from '../../api/auth/bootstrap.ts';
import type { AuthStore } from '../../api/auth/store.ts';
import { buildApi } from '../../api/server.ts';
import type { BerthConfig } from '../../config/load.ts';
import { recordSecret } from './secrets.ts';

export interface TestApi {
  /** A request as the platform admin, unless it carries its own authorization header. */
  inject(opts: InjectOptions): Promise<LightMyRequestResponse>;
  auth: AuthStore;
  adminToken: string;
  /** A new user with a role in a project (or none), and a token of theirs. */
  userWith(name: string, roles: Record<string, Role>, opts?: { expiresAt?: Date }): Promise<string>;
  /** Serves HTTP on a free loopback port, for clients outside this process (the CLI); returns the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

/** berth's API on its own inventory database, with the first admin created as on a first start. */
export async function testApi(config: BerthConfig, client: Client): Promise<TestApi> {
  // The inventory the config names: the same database the workers write machines into.
  const inventory = await openInventory(config.inventory);
  const auth = authStore(inventory);
  // A second API on the same database (another process, as in production) gets a token of the existing admin.
  const adminToken = (await ensureFirstAdmin(auth)) ?? (await auth.issueToken((await auth.userByName('admin'))!.id, 'test', null)).token;
  recordSecret(adminToken);
  const app = await buildApi({ config, client, auth, inventory });
  return {
    auth,
    adminToken,
    inject: (opts) => app.inject({ ...opts, headers: { authorization: `Bearer ${adminToken}`, ...opts.headers } }),
    async userWith(name, roles, opts = {}) {
      const id = await auth.createUser(name, false);
      for (const [project, role] of Object.entries(roles)) await auth.setRole(id, project, role);
      const { token } = await auth.issueToken(id, 'test', opts.expiresAt ?? null);
      recordSecret(token);
      return token;
    },
    async listen() {
      return app.listen({ host: '127.0.0.1', port: 0 });
    },
    async close() {
      await app.close();
      await inventory.destroy();
    },
  };
}

import { compileFilter } from '../../config/filters.ts';
import type { BerthConfig } from '../../config/load.ts';

export const roles = ['guest', 'developer', 'admin'] as const;
export type Role = (typeof roles)[number];

/** Who is asking: a user with a role per project; platform admins may do everything everywhere. */
export interface Principal {
  userId: number;
  name: string;
  platformAdmin: boolean;
  roles: Record<string, Role>;
}

/**
 * What a route needs: a role in the project the request concerns (guest reads, developer starts and cancels its
 * own, admin manages), or the platform admin, or just a valid token (one's own tokens, the codec). A request that
 * concerns no project is for platform admins only.
 */
export type Access = { platformAdmin: true } | { role: Role } | { authenticated: true };

export function allows(principal: Principal, access: Access, project: string | undefined): boolean {
  if (principal.platformAdmin || 'authenticated' in access) return true;
  if ('platformAdmin' in access || project === undefined) return false;
  const has = principal.roles[project];
  return has !== undefined && roles.indexOf(has) >= roles.indexOf(access.role);
}

/** The project an image belongs to: the first whose repository globs match its repository. */
export function projectOfRepository(config: BerthConfig, repository: string): string | undefined {
  return config.projects.find((p) => p.repositories.length > 0 && compileFilter({ include: p.repositories, exclude: [] })(repository))?.name;
}

export function projectOfCluster(config: BerthConfig, cluster: string): string | undefined {
  return config.projects.find((p) => p.clusters.includes(cluster))?.name;
}

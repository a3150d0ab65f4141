import type Docker from 'dockerode';
import type { ServiceContainer } from '../../contracts/services.ts';

/** Labels berth puts on a service's containers: a machine's engine says what it runs without the inventory. */
export const serviceLabels = {
  service: 'berth.service',
  version: 'berth.service.version',
  digest: 'berth.service.digest',
  replica: 'berth.service.replica',
} as const;

/** One name per replica and version: a retried start finds the container its lost attempt made. */
export const containerName = (service: string, replica: number, version: string) => `berth-${service}-${replica}-${version}`;

/** The engine's error status (dockerode puts the HTTP status on the error). */
export const engineStatus = (err: unknown) => (err as { statusCode?: number }).statusCode;

/** For a `.catch`: an engine answer with one of `statuses` (304 already so, 404 not there) means `value`; others rethrow. */
export function whenEngineAnswers<T>(statuses: number[], value: T): (err: unknown) => T {
  return (err) => {
    if (statuses.includes(engineStatus(err) ?? 0)) return value;
    throw err;
  };
}

export function asServiceContainer(c: { Id: string; Labels: Record<string, string>; State: string; Ports?: Docker.Port[] }): ServiceContainer {
  return {
    id: c.Id,
    replica: Number(c.Labels[serviceLabels.replica]),
    version: c.Labels[serviceLabels.version],
    digest: c.Labels[serviceLabels.digest],
    state: c.State,
    ports: Object.fromEntries((c.Ports ?? []).filter((p) => p.PublicPort).map((p) => [String(p.PrivatePort), p.PublicPort])),
  };
}

/** A service's containers on a machine, by replica. */
export async function serviceContainers(docker: Docker, service: string): Promise<ServiceContainer[]> {
  const listed = await docker.listContainers({ all: true, filters: { label: [`${serviceLabels.service}=${service}`] } });
  return listed.map(asServiceContainer).sort((a, b) => a.replica - b.replica);
}

/** Stops (10 s grace) and removes containers; ones already stopped or gone are not an error. */
export async function stopAndRemove(docker: Docker, ids: string[]): Promise<void> {
  for (const id of ids) {
    const c = docker.getContainer(id);
    await c.stop({ t: 10 }).catch(whenEngineAnswers([304, 404], undefined));
    await c.remove({ force: true }).catch(whenEngineAnswers([404], undefined));
  }
}

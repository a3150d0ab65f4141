import type { AdapterFactory } from '../adapter.ts';
import { HarborClient, unhealthyForImages } from './client.ts';
import { replicateWithHarbor } from './replicate.ts';

/** A Harbor: its health API, read-only mode as the fence, and its own replication. */
export const harborAdapter: AdapterFactory = (login, client) => {
  // One API client per Harbor and worker: probes every few seconds reuse its connections.
  const harbor = new HarborClient({ name: login.name, baseUrl: login.url, credentials: login.credentials });
  return {
    login,
    client,
    async health(signal) {
      // A Harbor whose jobservice or portal is down still serves images: only the image path counts.
      const unhealthy = unhealthyForImages(await harbor.health(signal));
      return unhealthy.length ? { up: false, detail: `Harbor reports ${unhealthy.join(', ')} unhealthy` } : { up: true };
    },
    async fence(readOnly, signal) {
      await harbor.setReadOnly(readOnly, signal);
      return { fenced: readOnly, how: `Harbor read-only mode ${readOnly ? 'on' : 'off'}` };
    },
    replicate: ({ target, onProgress, ...rest }) => replicateWithHarbor({ ...rest, source: harbor, target: { ...target.login, kind: target.login.kind.name }, onPoll: (e) => onProgress?.(e.status) }),
  };
};

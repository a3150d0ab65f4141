import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { freePort, spawnManaged, waitUntil, type ManagedProcess } from '../../embedded/processes.ts';
import { tempDir, type TestRegistry } from '../../testbed/berth.ts';

/** go-containerregistry's registry with the Referrers API (test/harness/ggcr-registry), as setup.sh links it. */
const ggcrRegistry = fileURLToPath(new URL('../../.tools/bin/ggcr-registry', import.meta.url));

/**
 * go-containerregistry's registry on a free loopback port: in memory, no auth, and the OCI 1.1 Referrers API
 * (which neither docker-registry 2.8 nor Distribution v3 has). A restart starts it empty.
 */
export async function startedGgcrRegistry(name: string): Promise<TestRegistry> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let process: ManagedProcess | undefined;
  const reg: TestRegistry = {
    name,
    port,
    url,
    dataDir: tempDir(`ggcr-${name}`),
    async start() {
      process = spawnManaged(`ggcr registry ${name}`, ggcrRegistry, ['--address', `127.0.0.1:${port}`], join(reg.dataDir, 'registry.log'));
      await waitUntil(`ggcr registry ${name} on ${url}`, async () => (await request(`${url}/v2/`)).statusCode === 200, { timeoutMs: 15_000, process });
    },
    async stop() {
      await process?.stop();
    },
  };
  await reg.start();
  return reg;
}

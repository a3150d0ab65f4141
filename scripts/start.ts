// `npm start`: the platform on the embedded default. Starts, unless told otherwise:
//  - a Temporal dev server (state in .berth/temporal.db, UI on :8233)   -- not when TEMPORAL_ADDRESS is set
//  - the demo registries of berth.example.yaml (data in .berth/) and nginx in front of its HA group
//                                                                      -- not when BERTH_CONFIG is set
//  - berth's workers and API. Ctrl-C stops everything it started.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApi } from '../api/start-api.ts';
import { findRegistry, loadConfig, type BerthConfig } from '../config/load.ts';
import { configPath } from '../config/path.ts';
import { startDockerRegistry } from '../embedded/docker-registry.ts';
import { generateSshKeyPair } from '../activities/hosts/private-key.ts';
import { ensureDockerEngine } from '../embedded/docker-engine.ts';
import { ensureHostImage } from '../embedded/host-image.ts';
import { startNginx } from '../embedded/nginx.ts';
import { stopAll } from '../embedded/processes.ts';
import { startTemporalDevServer } from '../embedded/temporal-dev-server.ts';
import { startWorkers } from '../workers/run.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const stateDir = join(root, '.berth');
const demo = !process.env.BERTH_CONFIG;

/** A secret of the demo, generated into its file on the first start and read from there afterwards. */
function demoSecret(file: string, generate: () => string): string {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, generate(), { mode: 0o600 });
  }
  return readFileSync(file, 'utf8').trim();
}

async function startDemoRegistries(config: BerthConfig): Promise<void> {
  // The demo registries require a login, like real ones; the password is generated once and kept in a file
  // that berth.example.yaml references (never inline).
  const passwordFile = config.registries[0].credentials?.passwordFile ?? join(stateDir, 'secrets', 'registry-password');
  const password = demoSecret(passwordFile, () => randomBytes(18).toString('base64url'));
  for (const r of config.registries) {
    const port = Number(new URL(r.url).port);
    await startDockerRegistry({
      name: r.name,
      port,
      dataDir: join(stateDir, 'registries', r.name),
      auth: { htpasswd: { username: r.credentials?.username ?? 'berth', password } },
    });
    console.log(`  registry ${r.name} (${r.idc}) on ${r.url}`);
  }
  // The demo HA groups' stable endpoints: one nginx, its files under .berth/nginx (berth.example.yaml says so).
  if (config.haGroups.length > 0) {
    const dir = join(stateDir, 'nginx');
    await startNginx({
      dir,
      pidFile: config.haGroups[0].endpoint.nginx.pidFile,
      endpoints: config.haGroups.map((g) => ({
        group: g.name,
        listen: new URL(g.endpoint.url).host,
        url: g.endpoint.url,
        upstreamFile: g.endpoint.nginx.upstreamFile,
        pushLog: g.endpoint.nginx.pushLog,
        sides: [g.primary, g.secondary].map((r) => ({ registry: r, upstream: new URL(findRegistry(config, r)!.url).host })),
      })),
    });
    for (const g of config.haGroups) console.log(`  HA endpoint ${g.name} on ${g.endpoint.url} (${g.primary} primary, ${g.secondary} secondary)`);
  }
}

async function main(): Promise<void> {
  const config = loadConfig(configPath());
  mkdirSync(stateDir, { recursive: true });
  if (!process.env.TEMPORAL_ADDRESS) {
    const port = Number(config.temporal.address.split(':').pop());
    const uiPort = Number(new URL(config.temporal.uiUrl).port);
    console.log(`starting Temporal dev server on ${config.temporal.address} (first start can take a while)`);
    // With encryption on, the UI decrypts payloads through berth's codec endpoint (after /login in the browser).
    const uiCodecEndpoint = config.encryption ? `http://${config.api.host}:${config.api.port}/codec` : undefined;
    await startTemporalDevServer({ port, uiPort, uiCodecEndpoint, dbFile: join(stateDir, 'temporal.db'), logFile: join(stateDir, 'logs', 'temporal.log') });
  }
  if (demo) {
    // The demo's payload keys: 32 random bytes each, generated once (production keys come from a secret store).
    for (const k of config.encryption?.keys ?? []) if (k.key.file) demoSecret(k.key.file, () => randomBytes(32).toString('base64'));
    for (const c of config.clusters) if (c.ssh.privateKey.file) demoSecret(c.ssh.privateKey.file, () => generateSshKeyPair('berth demo').privateKey);
    await startDemoRegistries(config);
  }

  if (config.clusters.some((c) => c.provider.kind === 'docker')) {
    // The docker provider's machines: the engine (dockerd is started if none answers) and the host image (built once).
    console.log('  Docker engine and host image for the docker clusters (the first build takes about a minute)');
    await ensureHostImage((await ensureDockerEngine()).docker);
  }
  const workers = await startWorkers(config);
  const api = await startApi(config, { logger: true });
  const { schedules, firstAdminToken, url: apiUrl } = api;

  console.log(`
berth is running
  Temporal UI   ${config.temporal.uiUrl}
  berth API     ${apiUrl}
  workers       ${workers.taskQueues.join(', ')}
  HA groups     ${config.haGroups.map((g) => `${g.name} (${g.endpoint.url})`).join(', ') || 'none'}, watched by their registryGuard workflows
  sync rules    ${config.syncRules.map((r) => r.name).join(', ') || 'none'} (schedules created ${schedules.created.length}, updated ${schedules.updated.length}, deleted ${schedules.deleted.length}${schedules.failed.length ? `; paused, not valid with this config: ${schedules.failed.join('; ')}` : ''})
  config        ${configPath()}
`);
  if (firstAdminToken) {
    // The token itself was printed above, or written to a file when stdout is not a terminal (startApi says which).
    console.log(`Every API call needs the admin's token (-H "authorization: Bearer $BERTH_TOKEN"); ${apiUrl}/login lets the Temporal UI decrypt payloads.
`);
  }
  if (demo) {
    const reg = config.registries[0];
    console.log(`Try it: push an image to ${reg.idc}, then replicate it to the other IDCs
  skopeo copy --all --dest-tls-verify=false --dest-creds berth:$(cat .berth/secrets/registry-password) \\
      oci:<layout>:<tag> docker://${new URL(reg.url).host}/lib/app:1.0
  curl -s -XPOST ${apiUrl}/v1/replications -H "authorization: Bearer $BERTH_TOKEN" -H 'content-type: application/json' \\
      -d '{"image":"lib/app:1.0","source":"idc-a","targets":["idc-b","idc-c"]}'
  curl -s -H "authorization: Bearer $BERTH_TOKEN" -XPOST ${apiUrl}/v1/distributions -H 'content-type: application/json' -d '{"image":"lib/app:1.0"}'
  curl -s -H "authorization: Bearer $BERTH_TOKEN" ${apiUrl}/v1/sync-rules
  curl -s -H "authorization: Bearer $BERTH_TOKEN" ${apiUrl}/v1/ha-groups
  curl -s -H "authorization: Bearer $BERTH_TOKEN" -XPOST ${apiUrl}/v1/ha-groups/hub/failover -H 'content-type: application/json' -d '{"dryRun":true,"reason":"rehearsal"}'
  curl -s -H "authorization: Bearer $BERTH_TOKEN" -XPOST ${apiUrl}/v1/machines -H 'content-type: application/json' -d '{"cluster":"demo","pool":"web"}'
  bin/berth machines --cluster demo
  curl -s -H "authorization: Bearer $BERTH_TOKEN" ${apiUrl}/v1/workflows/<workflowId>
`);
  }

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping berth`);
    await api.close();
    await workers.shutdown();
    await stopAll();
    process.exit(0);
  };
  // stop() ends the process itself; a signal handler has nobody to hand a promise to.
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  await workers.done;
}

main().catch(async (err) => {
  console.error(`berth failed to start: ${err instanceof Error ? err.message : err}`);
  await stopAll();
  process.exit(1);
});

// The berth API as its own process: `node --import tsx api/main.ts [--check]` (BERTH_CONFIG names berth.yaml). On
// start it creates or updates the sync rules' Temporal Schedules and the HA groups' guards, as `npm start` does, so
// a new berth.yaml takes effect with a restart of the API. --check validates berth.yaml, says where the API would
// listen, and starts nothing. SIGTERM or SIGINT: finish the requests in flight, exit.
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.ts';
import { configPath } from '../config/path.ts';
import { startApi } from './start-api.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { check: { type: 'boolean', default: false } } });
  const config = loadConfig(configPath());
  if (values.check) {
    console.log(`berth api would listen on http://${config.api.host}:${config.api.port}; Temporal ${config.temporal.address}`);
    return;
  }
  const api = await startApi(config, { logger: true });
  const { schedules } = api;
  console.log(
    `berth api on ${api.url}; Temporal ${config.temporal.address}; ` +
      `sync schedules created ${schedules.created.length}, updated ${schedules.updated.length}, deleted ${schedules.deleted.length}; ` +
      `HA guards ${config.haGroups.map((g) => g.name).join(', ') || 'none'}`,
  );
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      // The process ends when the server has closed; a close that fails must still end it, and say why.
      api.close().catch((err: unknown) => {
        console.error(`berth api failed to stop cleanly: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      });
    });
  }
}

// A bad berth.yaml or an unreachable Temporal: one clear line and a non-zero exit, so a supervisor restarts it.
main().catch((err) => {
  console.error(`berth api failed to start: ${err instanceof Error ? err.message : err}`);
  process.exit(1);
});

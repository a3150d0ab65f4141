import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { registry } from './registry.ts';

/** The Temporal runtime's own exporter in this process, when a worker runtime was installed with metrics. */
let sdkExporterUrl: string | undefined;

/**
 * Metrics options for the Temporal runtime: its Prometheus exporter listens on a loopback port of its own, and
 * /metrics merges it with berth's, so that each process is one scrape target.
 */
export async function sdkMetricsExporter(): Promise<{ prometheus: { bindAddress: string } }> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  sdkExporterUrl = `http://127.0.0.1:${port}/metrics`;
  return { prometheus: { bindAddress: `127.0.0.1:${port}` } };
}

/** berth's metrics and, in a worker process, the Temporal SDK's (task slots, poll and schedule-to-start latencies). */
async function metricsText(): Promise<string> {
  const own = await registry.metrics();
  if (!sdkExporterUrl) return own;
  const sdk = await fetch(sdkExporterUrl).then(
    (res) => res.text(),
    // berth's half is still worth scraping; the comment says why the other half is missing.
    (err: Error) => `# Temporal SDK metrics unavailable: ${err.message}\n`,
  );
  return `${own}\n${sdk}`;
}

/** `GET /metrics` for the API (and for `npm start`, whose API shares its process with the workers). */
export function metricsRoute(app: FastifyInstance): void {
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await metricsText()));
}

/** A worker process's own HTTP endpoint: `/metrics`, and `/healthz` (503 once a worker stopped) for orchestrators. */
export async function serveMetrics(opts: { host: string; port: number; healthy: () => boolean }): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/healthz') {
      const ok = opts.healthy();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ok }));
    } else if (req.url === '/metrics') {
      metricsText().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    } else {
      res.writeHead(404).end();
    }
  });
  server.listen(opts.port, opts.host);
  await once(server, 'listening');
  return server;
}

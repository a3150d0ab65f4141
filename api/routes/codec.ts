import type { Payload } from '@temporalio/common';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { isEncrypted, payloadProject } from '../../codec/aes-gcm-codec.ts';
import { payloadCodec } from '../../codec/data-converter.ts';
import type { Principal } from '../auth/access.ts';
import { route } from '../route.ts';
import type { ApiDeps } from '../server.ts';

/** The Temporal UI's codec protocol: payloads with base64 metadata values and data. */
const payloadsBody = z.object({ payloads: z.array(z.object({ metadata: z.record(z.string(), z.string()).default({}), data: z.string().default('') })) }).strict();

const fromJson = (p: z.infer<typeof payloadsBody>['payloads'][number]): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data, 'base64'),
});
const toJson = (p: Payload) => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? []).toString('base64')])),
  data: Buffer.from(p.data ?? []).toString('base64'),
});

/** Whether a caller may read a payload in clear: platform admins all, others those of their projects. */
const mayRead = (principal: Principal, payload: Payload) => {
  const project = payloadProject(payload);
  return principal.platformAdmin || (project !== undefined && principal.roles[project] !== undefined);
};

/**
 * The codec endpoint: the Temporal UI (and `temporal` CLI) send encrypted payloads here to show them decrypted to
 * people with a berth token; the browser sends it as the `berth_token` cookie set by /login. CORS admits the UI.
 * Each payload is decrypted only for members of the project it is labelled with (any role; platform admins: every
 * payload): the others come back as they were sent, still encrypted, as the UI shows payloads it cannot decode.
 */
export function codecRoutes(app: FastifyInstance, deps: ApiDeps) {
  const codec = payloadCodec(deps.config);
  const uiOrigin = new URL(deps.config.temporal.uiUrl).origin;
  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/codec/')) return;
    reply.header('access-control-allow-origin', uiOrigin).header('access-control-allow-credentials', 'true').header('vary', 'origin');
    if (req.method === 'OPTIONS') {
      return reply.code(204).header('access-control-allow-methods', 'POST').header('access-control-allow-headers', 'authorization, content-type, x-namespace').send();
    }
  });
  for (const op of ['encode', 'decode'] as const) {
    route(app, deps.gate, {
      method: 'POST',
      url: `/codec/${op}`,
      summary: `${op === 'encode' ? 'Encrypt' : 'Decrypt'} payloads with berth's key (the Temporal UI's codec endpoint)`,
      tag: 'codec',
      body: payloadsBody,
      // Decrypting is reading (any token, as the UI's users; each payload for its project's members, see mayRead);
      // encrypting under berth's key is for platform admins.
      access: op === 'decode' ? { authenticated: true } : { platformAdmin: true },
      handler: async ({ body, principal }) => {
        const payloads = body.payloads.map(fromJson);
        // Without encryption configured, payloads pass through unchanged, as the UI expects of a codec.
        if (!codec) return { payloads: payloads.map(toJson) };
        if (op === 'encode') return { payloads: (await codec.encode(payloads)).map(toJson) };
        const out = await Promise.all(payloads.map(async (p) => (isEncrypted(p) && !mayRead(principal, p) ? p : (await codec.decode([p]))[0])));
        return { payloads: out.map(toJson) };
      },
    });
  }
  // The browser's way in: the UI sends cookies, not headers, to the codec endpoint.
  app.post('/v1/session', async (req, reply) => {
    const token = z.object({ token: z.string().min(1) }).safeParse(req.body);
    const principal = token.success ? await deps.auth.principal(token.data.token) : { refused: 'send {"token": "..."}' };
    const login = { at: new Date(), principal: 'refused' in principal ? 'anonymous' : principal.name, action: 'POST /v1/session', target: req.url, source: req.ip, detail: null };
    if ('refused' in principal) {
      await deps.gate.audit({ ...login, status: 401, outcome: 'unauthenticated' });
      return reply.code(401).send({ error: 'unauthenticated', message: principal.refused });
    }
    await deps.gate.audit({ ...login, status: 200, outcome: 'ok' });
    // Read by the codec endpoint only; a day at most; Secure when the API is served over https.
    const secure = req.protocol === 'https' ? '; Secure' : '';
    return reply.header('set-cookie', `berth_token=${token.data!.token}; HttpOnly; SameSite=Lax; Path=/codec; Max-Age=86400${secure}`).send({ name: principal.name });
  });
  app.get('/login', async (_req, reply) => reply.type('text/html').send(loginPage));
}

const loginPage = `<!doctype html><meta charset="utf-8"><title>berth login</title>
<form onsubmit="event.preventDefault(); fetch('/v1/session', {method: 'POST', headers: {'content-type': 'application/json'},
  body: JSON.stringify({token: this.token.value})}).then(async (r) => { this.nextElementSibling.textContent = r.ok ?
  'Logged in as ' + (await r.json()).name + ': the Temporal UI now shows decrypted payloads.' : 'Refused: ' + (await r.json()).message; });">
<label>berth API token <input name="token" type="password" size="60" autofocus></label> <button>Log in</button></form><p></p>`;

import type { FastifyRequest } from 'fastify';
import type { Gatekeeper } from '../route.ts';
import type { AuthStore } from './store.ts';

/**
 * The token of a request: `Authorization: Bearer <token>`; for the codec endpoint only, also the `berth_token`
 * cookie the browser login sets (the Temporal UI sends cookies, not headers). Elsewhere a cookie would let any
 * same-site page make calls with it.
 */
function requestToken(req: FastifyRequest): string | undefined {
  const bearer = req.headers.authorization?.match(/^Bearer\s+(\S+)$/i)?.[1];
  if (bearer || !req.url.startsWith('/codec/')) return bearer;
  return req.headers.cookie?.match(/(?:^|;\s*)berth_token=([^;]+)/)?.[1];
}

export function storeGate(store: AuthStore): Gatekeeper {
  return {
    async authenticate(req) {
      const token = requestToken(req);
      return token ? store.principal(token) : { refused: 'no token: send Authorization: Bearer <token>' };
    },
    audit: (entry) => store.audit(entry),
  };
}

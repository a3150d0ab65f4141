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
  // Once per request: the rate limit asks before the route does.
  const seen = new WeakMap<FastifyRequest, ReturnType<Gatekeeper['authenticate']>>();
  return {
    authenticate(req) {
      let principal = seen.get(req);
      if (!principal) {
        const token = requestToken(req);
        principal = token ? store.principal(token) : Promise.resolve({ refused: 'no token: send Authorization: Bearer <token>' });
        seen.set(req, principal);
      }
      return principal;
    },
    audit: (entry) => store.audit(entry),
  };
}

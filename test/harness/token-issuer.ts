import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';

/** One `type:name:actions` scope of a token request, e.g. `repository:lib/app:pull,push`. */
export interface TokenScope {
  type: string;
  name: string;
  actions: string[];
}

export interface TokenService {
  service: string;
  issuer: string;
  rootCertBundle: string;
  /** Token requests answered, by outcome: a test can see that the Bearer flow really ran. */
  issued: number;
  refused: number;
  /** Answers a token request (any path): checks Basic credentials, signs the granted access. */
  handle(req: IncomingMessage, res: ServerResponse): void;
}

export interface TokenIssuer extends Omit<TokenService, 'handle'> {
  realm: string;
  close(): Promise<void>;
}

/**
 * The token service of docker-registry's `auth: token` (the flow Harbor and Docker Hub use): it checks Basic
 * credentials and returns an ES256 JWT, signed by a key whose self-signed certificate the registry trusts
 * (`rootcertbundle`); the certificate travels in the `x5c` header. `grant` decides which of the requested actions
 * a user gets; by default every action on repositories and nothing else.
 */
export function createTokenService(dir: string, users: Record<string, string>, opts: { service?: string; issuer?: string; grant?: (user: string, scope: TokenScope) => string[] } = {}): TokenService {
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=berth-test-token-issuer'], { stdio: 'ignore' });
  const key = createPrivateKey(readFileSync(keyFile));
  const certDer = new X509Certificate(readFileSync(certFile)).raw.toString('base64');
  const service = opts.service ?? 'berth-test-registry';
  const issuer = opts.issuer ?? 'berth-test-issuer';
  const grant = opts.grant ?? ((_user: string, scope: TokenScope) => (scope.type === 'repository' ? scope.actions : []));
  const b64url = (v: object | Buffer) => Buffer.from(Buffer.isBuffer(v) ? v : JSON.stringify(v)).toString('base64url');

  const state = {
    service,
    issuer,
    rootCertBundle: certFile,
    issued: 0,
    refused: 0,
    handle(req: IncomingMessage, res: ServerResponse) {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const [user, pass] = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64')
        .toString()
        .split(':');
      if (!user || users[user] !== pass) {
        state.refused++;
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ details: 'incorrect username or password' }));
        return;
      }
      const access = url.searchParams.getAll('scope').flatMap((text) => {
        const [type, name, actions] = text.split(':');
        const granted = grant(user, { type, name, actions: actions.split(',') });
        return granted.length ? [{ type, name, actions: granted }] : [];
      });
      const now = Math.floor(Date.now() / 1000);
      const header = b64url({ typ: 'JWT', alg: 'ES256', x5c: [certDer] });
      const claims = b64url({ iss: issuer, sub: user, aud: url.searchParams.get('service'), exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access });
      const signature = sign('sha256', Buffer.from(`${header}.${claims}`), { key, dsaEncoding: 'ieee-p1363' });
      state.issued++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${header}.${claims}.${b64url(signature)}`, expires_in: 300 }));
    },
  };
  return state;
}

/** A token service on its own loopback port. */
export async function startTokenIssuer(dir: string, users: Record<string, string>): Promise<TokenIssuer> {
  const tokens = createTokenService(dir, users);
  const server: Server = createServer((req, res) => tokens.handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service: tokens.service,
    issuer: tokens.issuer,
    rootCertBundle: tokens.rootCertBundle,
    get issued() {
      return tokens.issued;
    },
    get refused() {
      return tokens.refused;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

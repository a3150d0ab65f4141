import { execFileSync } from 'node:child_process';
import { createPrivateKey, randomUUID, sign, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';

export interface TokenIssuer {
  realm: string;
  service: string;
  issuer: string;
  rootCertBundle: string;
  /** Token requests answered, by outcome: a test can see that the Bearer flow really ran. */
  issued: number;
  refused: number;
  close(): Promise<void>;
}

/**
 * A small token service for docker-registry's `auth: token` (the flow Harbor and Docker Hub use): it checks
 * Basic credentials and returns an ES256 JWT, signed by a key whose self-signed certificate the registry trusts
 * (`rootcertbundle`); the certificate travels in the `x5c` header.
 */
export async function startTokenIssuer(dir: string, users: Record<string, string>): Promise<TokenIssuer> {
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=berth-test-token-issuer'], { stdio: 'ignore' });
  const key = createPrivateKey(readFileSync(keyFile));
  const certDer = new X509Certificate(readFileSync(certFile)).raw.toString('base64');
  const service = 'berth-test-registry';
  const issuer = 'berth-test-issuer';
  const b64url = (v: object | Buffer) => Buffer.from(Buffer.isBuffer(v) ? v : JSON.stringify(v)).toString('base64url');

  const state = { issued: 0, refused: 0 };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const [user, pass] = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString().split(':');
    if (!user || users[user] !== pass) {
      state.refused++;
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ details: 'incorrect username or password' }));
      return;
    }
    const access = url.searchParams.getAll('scope').flatMap((scope) => {
      const [type, name, actions] = scope.split(':');
      return type === 'repository' ? [{ type, name, actions: actions.split(',') }] : [];
    });
    const now = Math.floor(Date.now() / 1000);
    const header = b64url({ typ: 'JWT', alg: 'ES256', x5c: [certDer] });
    const claims = b64url({ iss: issuer, sub: user, aud: url.searchParams.get('service'), exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access });
    const signature = sign('sha256', Buffer.from(`${header}.${claims}`), { key, dsaEncoding: 'ieee-p1363' });
    state.issued++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${header}.${claims}.${b64url(signature)}`, expires_in: 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    rootCertBundle: certFile,
    get issued() {
      return state.issued;
    },
    get refused() {
      return state.refused;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Parses `WWW-Authenticate: Bearer realm="...",service="...",scope="..."` (RFC 7235 auth-params). */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export function parseChallenge(header: string): Challenge {
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const params: Record<string, string> = {};
  const re = /([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  const rest = space < 0 ? '' : header.slice(space + 1);
  for (let m = re.exec(rest); m; m = re.exec(rest)) {
    params[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
  }
  return { scheme, params };
}

export interface Credentials {
  username: string;
  password: string;
}

export function basicAuthorization({ username, password }: Credentials): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Whether a URL is on the registry's own host: only there does a request carry its credentials or tokens. */
export function onRegistryHost(registryUrl: string, url: string | URL): boolean {
  return new URL(url).hostname === new URL(registryUrl).hostname;
}

/**
 * Why a registry's credentials must not go to the token realm its challenge names, if they must not. The realm
 * comes from the registry's answer, so a registry (or whoever answers in its name) could send them anywhere: they
 * go only to the registry's own host or to an origin the config trusts, and never from https to plain http.
 */
export function realmRefusal(registryUrl: string, realm: string, trustedRealms: readonly string[]): string | undefined {
  const registry = new URL(registryUrl);
  const target = new URL(realm);
  if (registry.protocol === 'https:' && target.protocol === 'http:') return 'a token service over plain http, and the registry is https';
  if (onRegistryHost(registryUrl, target) || trustedRealms.some((t) => new URL(t).origin === target.origin)) return undefined;
  return `a token service on another host than ${registry.hostname}, not among its trustedTokenRealms`;
}

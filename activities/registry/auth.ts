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

/**
 * The token realm comes from the registry's challenge: credentials for an https registry must not travel in
 * clear to an http realm it names.
 */
export function realmKeepsCredentialsSafe(registryUrl: string, realm: string): boolean {
  return !(new URL(registryUrl).protocol === 'https:' && new URL(realm).protocol === 'http:');
}

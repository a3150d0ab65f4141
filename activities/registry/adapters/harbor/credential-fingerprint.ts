import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

// Harbor never shows a stored secret, so berth cannot read back whether an endpoint's credential is the one it
// wants. It keeps a fingerprint in the endpoint's description instead: scrypt with a random salt (a password
// hash, not the password), enough to see a change without sending the secret, and the health check Harbor runs on
// every update, each time.

type Credential = { access_key: string; access_secret: string };

const derive = promisify(scrypt) as (password: string, salt: Buffer, keylen: number) => Promise<Buffer>;
const prefix = 'berth credential fingerprint: scrypt$';

const hash = (credential: Credential, salt: Buffer) => derive(`${credential.access_key}\n${credential.access_secret}`, salt, 32);

/** The description of an endpoint with this credential: its fingerprint, or nothing without a credential. */
export async function credentialFingerprint(credential: Credential | undefined): Promise<string> {
  if (!credential) return '';
  const salt = randomBytes(16);
  return `${prefix}${salt.toString('base64url')}$${(await hash(credential, salt)).toString('base64url')}`;
}

/** Whether an endpoint's description holds the fingerprint of this credential. */
export async function matchesFingerprint(description: string, credential: Credential): Promise<boolean> {
  if (!description.startsWith(prefix)) return false;
  const [salt, expected] = description
    .slice(prefix.length)
    .split('$')
    .map((part) => Buffer.from(part, 'base64url'));
  if (!salt?.length || expected?.length !== 32) return false;
  return timingSafeEqual(await hash(credential, salt), expected);
}

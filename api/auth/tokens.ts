import { createHash, randomBytes } from 'node:crypto';

/** A new API token: shown to its owner once; only its hash is stored. */
export function newToken(): { token: string; hash: string } {
  const token = `berth_${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashToken(token) };
}

/** Tokens are random (256 bits), so a plain SHA-256 is enough to store them: there is nothing to brute-force. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

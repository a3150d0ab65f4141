import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Secrets the tests create (registry passwords, API tokens, SSH and cloud keys, payload keys), written down so
 * that test/history-secrets.test.ts can check that none of them reached a workflow history.
 */
const dir = process.env.BERTH_TEST_SECRETS_DIR;

export function recordSecret(secret: string): void {
  if (!dir || secret.length < 8) return;
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, `${process.pid}.txt`), `${Buffer.from(secret).toString('base64')}\n`);
}

export function recordedSecrets(): string[] {
  if (!dir || !existsSync(dir)) return [];
  return readdirSync(dir).flatMap((f) =>
    readFileSync(join(dir, f), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => Buffer.from(line, 'base64').toString()),
  );
}

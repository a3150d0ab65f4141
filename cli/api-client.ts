import { request } from 'undici';
import { CliError, exitCodes } from './errors.ts';

/** The berth API at BERTH_API (default the embedded one), with the token in BERTH_TOKEN. */
export function apiClient(env = process.env) {
  const base = (env.BERTH_API ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const token = env.BERTH_TOKEN;
  // The CLI prints what the API answers and reads a few fields of it: typed per call would only restate the API.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return async function call<T = any>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    let res;
    try {
      res = await request(`${base}${path}`, {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new CliError(`cannot reach the berth API at ${base}: ${(err as Error).message}`, exitCodes.unavailable);
    }
    const text = await res.body.text();
    const parsed = text ? JSON.parse(text) : undefined;
    if (res.statusCode < 400) return parsed as T;
    const detail = parsed?.issues ? parsed.issues.map((i: { path: string; message: string }) => `${i.path || '(body)'}: ${i.message}`).join('; ') : (parsed?.message ?? text);
    const code =
      res.statusCode === 401 || res.statusCode === 403
        ? exitCodes.denied
        : res.statusCode === 404
          ? exitCodes.notFound
          : res.statusCode === 400
            ? exitCodes.usage
            : res.statusCode === 503
              ? exitCodes.unavailable
              : exitCodes.failed;
    const hint = res.statusCode === 401 && !token ? ' (set BERTH_TOKEN)' : '';
    throw new CliError(`${method} ${path}: HTTP ${res.statusCode}: ${detail}${hint}`, code);
  };
}

export type ApiCall = ReturnType<typeof apiClient>;

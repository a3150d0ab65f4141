import type { AdapterFactory } from '../adapter.ts';

/** A plain registry: healthy when `/v2/` answers; it has no fence of its own. */
export const distributionAdapter: AdapterFactory = (login, client) => ({
  login,
  client,
  async health(signal) {
    await client().ping(signal);
    return { up: true };
  },
  async fence() {
    return { fenced: false, how: 'a distribution registry is fenced by removing it from the endpoint' };
  },
});

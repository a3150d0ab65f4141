import { Agent, request } from 'undici';

export interface RawEndpoint {
  url: string;
  username: string;
  password: string;
}

/**
 * The floor on this machine: each blob streamed GET -> PUT with nothing else (no existence checks, no hashing,
 * no manifests), as many at once as berth copies.
 */
export async function rawCopyBlobs(source: RawEndpoint, target: RawEndpoint, repository: string, digests: string[], concurrency: number): Promise<number> {
  const dispatcher = new Agent({ connections: 16 });
  const auth = (e: RawEndpoint) => ({ authorization: `Basic ${Buffer.from(`${e.username}:${e.password}`).toString('base64')}` });
  let bytes = 0;
  const queue = [...digests];
  const lane = async () => {
    for (let digest = queue.shift(); digest; digest = queue.shift()) {
      const started = await request(`${target.url}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: auth(target), dispatcher });
      await started.body.dump();
      const location = new URL(started.headers.location as string, target.url);
      location.searchParams.set('digest', digest);
      const blob = await request(`${source.url}/v2/${repository}/blobs/${digest}`, { headers: auth(source), dispatcher });
      const size = Number(blob.headers['content-length']);
      const put = await request(location, { method: 'PUT', body: blob.body, headers: { ...auth(target), 'content-length': String(size), 'content-type': 'application/octet-stream' }, dispatcher });
      await put.body.dump();
      if (put.statusCode !== 201) throw new Error(`raw PUT answered ${put.statusCode}`);
      bytes += size;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  await dispatcher.close();
  return bytes;
}

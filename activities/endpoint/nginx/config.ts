/**
 * The nginx configuration berth expects in front of an HA pair: berth owns only the included upstream file;
 * the server block (written by embedded/nginx.ts for the demo and tests, by operators in production) proxies the
 * registry API unbuffered, tells which registry served each answer, refuses writes while berth fences the side
 * that serves, and logs manifest pushes as JSON lines.
 */
import type { EndpointTarget } from '../endpoint.ts';

const prefix = (group: string) => `berth_${group.replaceAll('-', '_')}`;

/** The file berth rewrites on a switch: the upstream, the registry's name, and whether writes are refused. */
export function upstreamBlock(group: string, { registry, upstream, writesRefused }: EndpointTarget): string {
  const p = prefix(group);
  return `# written by berth: the side of HA group ${group} that serves traffic
upstream ${p} { server ${upstream}; }
map $request_method $${p}_registry { default "${registry}"; }
map $request_method $${p}_writes_refused { ${writesRefused ? 'GET 0; HEAD 0; default 1;' : 'default 0;'} }
`;
}

/** What an upstream file says (a file from before berth 0.2 names only the upstream). */
export function parseUpstreamBlock(text: string): Partial<EndpointTarget> {
  return {
    upstream: text.match(/server\s+([^;\s]+);/)?.[1],
    registry: text.match(/_registry\s*\{\s*default\s+"([^"]+)";/)?.[1],
    writesRefused: /_writes_refused\s*\{[^}]*default\s+1;/.test(text),
  };
}

export interface ServerBlockOptions {
  group: string;
  listen: string;
  upstreamFile: string;
  pushLog?: string;
}

/** The header that names the registry behind an answer, and the one that marks a write refused by the fence. */
export const registryHeader = 'x-berth-registry';
export const refusedHeader = 'x-berth-writes';

/** Goes inside `http { }`. Needs `log_format berth_push` (see httpPreamble) when a push log is wanted. */
export function serverBlock({ group, listen, upstreamFile, pushLog }: ServerBlockOptions): string {
  const p = prefix(group);
  return `include ${upstreamFile};
server {
  listen ${listen};
  # Image layers are large and streamed: no size limit, no buffering in either direction.
  client_max_body_size 0;
  proxy_request_buffering off;
  proxy_buffering off;
  proxy_read_timeout 900s;
  proxy_send_timeout 900s;
  proxy_connect_timeout 2s;
  ${pushLog ? `access_log ${pushLog} berth_push if=$berth_manifest_put;` : 'access_log off;'}
  location / {
    # berth fences the serving side while a failback catches up: reads go on, writes wait for the switch.
    if ($${p}_writes_refused) {
      add_header X-Berth-Registry $${p}_registry always;
      add_header X-Berth-Writes refused always;
      add_header Retry-After 10 always;
      return 503 '{"errors":[{"code":"UNAVAILABLE","message":"HA group ${group} is switching sides: retry the push shortly"}]}';
    }
    proxy_pass http://${p};
    proxy_http_version 1.1;
    # Registries build upload Locations from Host: keep the client's, so they point back at the endpoint.
    proxy_set_header Host $http_host;
    add_header X-Berth-Upstream $upstream_addr always;
    add_header X-Berth-Registry $${p}_registry always;
  }
}
`;
}

/** Once per `http { }`: the push log format and the map that selects manifest PUTs. */
export const httpPreamble = `log_format berth_push escape=json '{"msec":"$msec","method":"$request_method","uri":"$uri","status":"$status","digest":"$upstream_http_docker_content_digest"}';
map "$request_method $uri" $berth_manifest_put {
  "~^PUT /v2/.+/manifests/" 1;
  default 0;
}
`;

/**
 * The nginx configuration berth expects in front of an HA pair: berth owns only the included upstream file;
 * the server block (written by embedded/nginx.ts for the demo and tests, by operators in production) proxies the
 * registry API unbuffered, tells which upstream served each answer, and logs manifest pushes as JSON lines.
 */

const upstreamName = (group: string) => `berth_${group.replaceAll('-', '_')}`;

/** The file berth rewrites on a switch. */
export function upstreamBlock(group: string, upstream: string): string {
  return `# written by berth: the side of HA group ${group} that serves traffic\nupstream ${upstreamName(group)} { server ${upstream}; }\n`;
}

/** The upstream an upstream file names. */
export function parseUpstreamBlock(text: string): string | undefined {
  return text.match(/server\s+([^;\s]+);/)?.[1];
}

export interface ServerBlockOptions {
  group: string;
  listen: string;
  upstreamFile: string;
  pushLog?: string;
}

/** Goes inside `http { }`. Needs `log_format berth_push` (see httpPreamble) when a push log is wanted. */
export function serverBlock({ group, listen, upstreamFile, pushLog }: ServerBlockOptions): string {
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
    proxy_pass http://${upstreamName(group)};
    proxy_http_version 1.1;
    # Registries build upload Locations from Host: keep the client's, so they point back at the endpoint.
    proxy_set_header Host $http_host;
    add_header X-Berth-Upstream $upstream_addr always;
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

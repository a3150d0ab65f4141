import type { HaGroup } from '../../config/load.ts';
import type { TrafficEndpoint } from './endpoint.ts';
import { nginxEndpoint } from './nginx/nginx-endpoint.ts';

export type { EndpointTarget, Push, TrafficEndpoint } from './endpoint.ts';

/** The endpoint implementation a group's config names; each kind lives in its own folder. */
export function trafficEndpoint(group: HaGroup): TrafficEndpoint {
  return nginxEndpoint(group);
}

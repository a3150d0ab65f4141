/** A manifest pushed through the endpoint: what the RPO of a failover checks on the secondary. */
export interface Push {
  repository: string;
  reference: string;
  digest: string;
  at: number;
}

/** Where an endpoint sends traffic: a registry by name, at `host:port`. */
export interface EndpointTarget {
  registry: string;
  upstream: string;
  /** Writes (anything but GET and HEAD) are refused while a side is fenced for a failback's final catch-up. */
  writesRefused: boolean;
}

/**
 * The stable address in front of an HA pair: something that sends registry traffic to one side and can be told
 * to send it to the other. nginx is the implementation today; DNS or a cloud load balancer fit the same shape.
 */
export interface TrafficEndpoint {
  /** Where the endpoint's configuration sends traffic (what a reload or a restart would serve). */
  configured(): Promise<Partial<EndpointTarget> | undefined>;
  /** What answers a request through the endpoint now: the registry it names and the address nginx used. */
  serving(signal?: AbortSignal): Promise<Partial<EndpointTarget> | undefined>;
  /**
   * Sends new traffic to `target`; resolves once requests through the endpoint arrive at exactly that registry.
   * When that cannot be shown, the previous configuration is put back (and reloaded) before it throws.
   */
  switchTo(target: EndpointTarget, signal?: AbortSignal): Promise<void>;
  /** Manifest pushes seen through the endpoint since `sinceMs`, when the endpoint logs them; else null. */
  pushesSince(sinceMs: number): Promise<Push[] | null>;
}

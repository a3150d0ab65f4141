/** A manifest pushed through the endpoint: what the RPO of a failover checks on the secondary. */
export interface Push {
  repository: string;
  reference: string;
  digest: string;
  at: number;
}

/**
 * The stable address in front of an HA pair: something that sends registry traffic to one side and can be told
 * to send it to the other. nginx is the implementation today; DNS or a cloud load balancer fit the same shape.
 */
export interface TrafficEndpoint {
  /** The `host:port` the endpoint sends traffic to now, as its configuration says. */
  current(): Promise<string | undefined>;
  /** Sends new traffic to `upstream` (`host:port`); resolves once requests through the endpoint arrive there. */
  switchTo(upstream: string, signal?: AbortSignal): Promise<void>;
  /** Manifest pushes seen through the endpoint since `sinceMs`, when the endpoint logs them; else null. */
  pushesSince(sinceMs: number): Promise<Push[] | null>;
}

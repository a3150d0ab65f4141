/** A registry as workflows see it: by name, with the IDC it sits in and the queue of that IDC's workers. */
export interface RegistryEndpoint {
  registry: string;
  idc: string;
  /** The task queue of the registry's IDC: activities that work on this registry run there, near its data. */
  taskQueue: string;
}

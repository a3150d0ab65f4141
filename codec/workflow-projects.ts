/**
 * The project each workflow belongs to, as far as this process has seen: the codec labels every payload it
 * encrypts with it, so that the codec endpoint shows a payload only to members of its project.
 *
 * A process learns a workflow's project where it is sure of it: the API from the `BerthProject` search attribute
 * of what it starts (client interceptor), a worker from the label of the payloads it decrypts for that workflow
 * (labels are authenticated: see AesGcmCodec). A child workflow whose ID extends its parent's (`<parent>/...`)
 * belongs to the parent's project. A workflow none of these covers gets no label: its payloads are for platform
 * admins only.
 */
export class WorkflowProjects {
  private readonly projects = new Map<string, string>();

  constructor(private readonly capacity = 100_000) {}

  remember(workflowId: string, project: string): void {
    // Most recently seen last, so that the oldest entry is the first to go.
    this.projects.delete(workflowId);
    this.projects.set(workflowId, project);
    if (this.projects.size > this.capacity) this.projects.delete(this.projects.keys().next().value!);
  }

  of(workflowId: string | undefined): string | undefined {
    for (let id = workflowId; id; id = id.includes('/') ? id.slice(0, id.lastIndexOf('/')) : undefined) {
      const project = this.projects.get(id);
      if (project !== undefined) return project;
    }
    return undefined;
  }
}

/** This process's knowledge: one per process, shared by its codec, its clients and its workers. */
export const workflowProjects = new WorkflowProjects();

// ComposingContainerizer (src/slave/containerizer/composing.cpp): asks each
// member in the configured order to claim a top-level launch; nested containers
// and every later call go to the member that owns the root container.
import { notFound } from '../errors.js';
import type { Socket } from 'node:net';
import type { AttachHandle, Census, Containerizer, ContainerStatus, ExecHandle, ExecIO, ExecResult, LaunchRequest, LaunchResult, RecoveryReport, Termination } from './containerizer.js';
import { type ContainerId, type ResourceLimits, type ResourceStatistics, type UsageDetail, idString, rootOf } from './mesos/isolator.js';
import type { ProcessSpec } from '../store/metadata.js';

export class ComposingContainerizer implements Containerizer {
  private readonly owners = new Map<string, Containerizer>();

  constructor(private readonly members: { name: string; containerizer: Containerizer }[]) {}

  names(): string[] {
    return this.members.map((m) => m.name);
  }

  async recover(): Promise<RecoveryReport> {
    const reports = await Promise.all(this.members.map((m) => m.containerizer.recover()));
    for (const m of this.members) {
      for (const id of m.containerizer.containers()) this.owners.set(idString(id), m.containerizer);
    }
    return {
      containers: reports.flatMap((r) => r.containers),
      protected: reports.flatMap((r) => r.protected),
      orphans: reports.flatMap((r) => r.orphans),
      cleanup: Promise.all(reports.map((r) => r.cleanup)).then(() => undefined),
    };
  }

  async launch(req: LaunchRequest): Promise<LaunchResult> {
    const id = req.config.id;
    const key = idString(id);
    if (this.owners.has(key)) return 'ALREADY_LAUNCHED';
    if (id.parent) {
      const owner = this.owners.get(idString(rootOf(id)));
      if (!owner) throw notFound(`root container ${rootOf(id).value} is unknown`);
      this.owners.set(key, owner);
      return owner.launch(req);
    }
    for (const m of this.members) {
      let result: LaunchResult;
      try {
        result = await m.containerizer.launch(req);
      } catch (err) {
        // A member that claimed the launch and failed still owns what it made: whoever launched
        // must be able to destroy it (a failed RunPodSandbox left its /dev/shm mount behind).
        if (m.containerizer.containers().some((c) => idString(c) === key)) this.owners.set(key, m.containerizer);
        throw err;
      }
      if (result === 'NOT_SUPPORTED') continue;
      this.owners.set(key, m.containerizer);
      return result;
    }
    return 'NOT_SUPPORTED';
  }

  private owner(id: ContainerId): Containerizer | undefined {
    return this.owners.get(idString(id)) ?? this.owners.get(idString(rootOf(id)));
  }

  private must(id: ContainerId): Containerizer {
    const c = this.owner(id);
    if (!c) throw notFound(`container ${id.value} is unknown`);
    return c;
  }

  start(id: ContainerId): Promise<void> {
    return this.must(id).start(id);
  }
  async kill(id: ContainerId, signal: number): Promise<boolean> {
    const c = this.owner(id);
    return c ? c.kill(id, signal) : false;
  }
  async wait(id: ContainerId): Promise<Termination | undefined> {
    const c = this.owner(id);
    return c ? c.wait(id) : undefined;
  }
  async destroy(id: ContainerId): Promise<Termination | undefined> {
    const c = this.owner(id);
    return c ? c.destroy(id) : undefined;
  }
  update(id: ContainerId, resources: ResourceLimits): Promise<void> {
    return this.must(id).update(id, resources);
  }
  usage(id: ContainerId, detail: UsageDetail = 'full'): Promise<ResourceStatistics> {
    return this.must(id).usage(id, detail);
  }
  execSync(id: ContainerId, argv: string[], timeoutMs: number, process: ProcessSpec): Promise<ExecResult> {
    return this.must(id).execSync(id, argv, timeoutMs, process);
  }
  async exec(id: ContainerId, argv: string[], process: ProcessSpec, io: ExecIO): Promise<ExecHandle> {
    return this.must(id).exec(id, argv, process, io);
  }
  async attach(id: ContainerId): Promise<AttachHandle> {
    return this.must(id).attach(id);
  }
  async portForward(podId: ContainerId, port: number): Promise<Socket> {
    return this.must(podId).portForward(podId, port);
  }
  async status(id: ContainerId): Promise<ContainerStatus> {
    return this.must(id).status(id);
  }
  control(id: ContainerId, line: string): Promise<void> {
    return this.must(id).control(id, line);
  }
  async remove(id: ContainerId): Promise<void> {
    const c = this.owner(id);
    this.owners.delete(idString(id));
    if (c) await c.remove(id);
  }
  containers(): ContainerId[] {
    return this.members.flatMap((m) => m.containerizer.containers());
  }
  pid(id: ContainerId): number | undefined {
    return this.owner(id)?.pid(id);
  }

  processPid(id: ContainerId): number | undefined {
    return this.owner(id)?.processPid(id);
  }
  isRunning(id: ContainerId): boolean {
    return this.owner(id)?.isRunning(id) ?? false;
  }
  /** Each member's census (the metrics), by member name; members without one are left out. */
  memberCensus(): { containerizer: string; census: Census }[] {
    return this.members.flatMap((m) => (m.containerizer.census ? [{ containerizer: m.name, census: m.containerizer.census() }] : []));
  }
}

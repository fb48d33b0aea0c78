// LinuxLauncher (src/slave/containerizer/mesos/linux_launcher.cpp): every
// container has a freezer cgroup (v1 freezer, or its cgroup2 dir); the child
// is held on a pipe until it is in it, and destroy = freeze → SIGKILL → thaw
// (cgroup.kill on v2), so nothing a container forked can escape.
import { readdir } from 'node:fs/promises';
import { native, type SpawnOptions, type SpawnedChild } from '../../../native/index.js';
import { addProcess, cgroupPathFor, removeCgroup, type Cgroups } from '../../../cgroups/index.js';
import type { Logger } from '../../../log.js';
import type { ContainerConfig } from '../isolator.js';
import type { Launcher } from './launcher.js';

export class LinuxLauncher implements Launcher {
  readonly name = 'linux';
  readonly cloneIntoCgroup: boolean;

  constructor(
    private readonly cgroups: Cgroups,
    private readonly root: string,
    private readonly log: Logger,
  ) {
    this.cloneIntoCgroup = cgroups.v1('freezer') === undefined;
  }

  static available(cgroups: Cgroups): boolean {
    return process.getuid?.() === 0 && (cgroups.v1('freezer') !== undefined || cgroups.v2Root() !== undefined);
  }

  private rel(config: ContainerConfig): string {
    return cgroupPathFor(config, this.root);
  }

  async fork(config: ContainerConfig, spec: SpawnOptions, isolate: (heldPid: number) => Promise<void>): Promise<SpawnedChild> {
    const dir = await this.cgroups.createFreezer(this.rel(config));
    const held = await native().spawnHeld(spec);
    try {
      // Freezer first: destroy kills by freezer membership, so the child must never run outside it.
      await addProcess(dir, held.pid);
      await isolate(held.pid);
    } catch (err) {
      native().abort(held);
      throw err;
    }
    return native().release(held);
  }

  async place(config: ContainerConfig, pid: number): Promise<void> {
    const dir = this.cgroups.freezerDir(this.rel(config));
    if (dir) await addProcess(dir, pid);
  }

  async destroy(config: ContainerConfig): Promise<void> {
    const rel = this.rel(config);
    await this.cgroups.freezerKill(rel);
    const dir = this.cgroups.freezerDir(rel);
    // Only the launcher's own cgroup; the isolators remove theirs in cleanup.
    if (dir) {
      try {
        await removeCgroup(dir);
      } catch (err) {
        this.log.warn('removing freezer cgroup failed', { cgroup: dir, error: String(err) });
      }
    }
  }

  /** Pods under our cgroup root that no checkpoint knows are orphans: kill and remove them. */
  async recover(configs: ContainerConfig[]): Promise<string[]> {
    const known = new Set(configs.filter((c) => c.kind === 'pod' && !c.cgroupParent).map((c) => c.id.value));
    const rootDir = this.cgroups.freezerDir(this.root);
    if (!rootDir) return [];
    let entries: string[];
    try {
      entries = (await readdir(rootDir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      return [];
    }
    const orphans = entries.filter((name) => !known.has(name));
    for (const name of orphans) {
      const rel = `${this.root}/${name}`;
      try {
        await this.cgroups.freezerKill(rel);
        await this.cgroups.removeEverywhere(rel);
      } catch (err) {
        this.log.warn('cleaning up orphan cgroup failed', { cgroup: rel, error: String(err) });
      }
    }
    return orphans;
  }
}

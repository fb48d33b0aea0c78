// PosixLauncher (Mesos' SubprocessLauncher): process groups only, for hosts
// without a freezer cgroup. It cannot find orphans and cannot create namespaces.
import { failedPrecondition } from '../../../errors.js';
import { native, type SpawnOptions, type SpawnedChild } from '../../../native/index.js';
import type { ContainerConfig } from '../isolator.js';
import { idString } from '../isolator.js';
import type { KnownContainer, Launcher } from './launcher.js';
import type { Steps } from '../../../util/steps.js';

export class PosixLauncher implements Launcher {
  readonly cloneIntoCgroup = false;
  readonly name = 'posix';
  private readonly pids = new Map<string, number>();

  /** The process groups of recovered pods, from their recorded helper pids (no orphans to find without cgroups). */
  async recover(configs: KnownContainer[], pidOf: (config: KnownContainer) => number | undefined): Promise<string[]> {
    for (const c of configs) {
      const pid = pidOf(c);
      if (pid !== undefined) this.pids.set(idString(c.id), pid);
    }
    return [];
  }

  async fork(config: ContainerConfig, spec: SpawnOptions, isolate: (heldPid: number) => Promise<void>, steps?: Steps): Promise<SpawnedChild> {
    if (spec.cloneNamespaces.length > 0 || spec.joinNamespaces.length > 0) {
      throw failedPrecondition('the posix launcher cannot create or join namespaces; use --launcher=linux');
    }
    const held = await native().spawnHeld({ ...spec, setsid: true });
    steps?.mark('spawn');
    try {
      await isolate(held.pid);
      steps?.mark('isolate');
    } catch (err) {
      native().abort(held);
      throw err;
    }
    const child = await native().release(held);
    steps?.mark('release');
    this.pids.set(idString(config.id), child.pid);
    return child;
  }

  async place(config: ContainerConfig, pid: number): Promise<void> {
    void config;
    void pid;
  }

  async destroy(config: ContainerConfig): Promise<void> {
    const pid = this.pids.get(idString(config.id));
    this.pids.delete(idString(config.id));
    if (pid === undefined) return;
    try {
      // setsid made the child a session and group leader: its pgid is its pid.
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

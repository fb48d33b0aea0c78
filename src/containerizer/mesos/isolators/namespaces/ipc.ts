// namespaces/ipc: a pod gets a new IPC namespace and a private /dev/shm (a
// tmpfs on the host under its runtime dir, bound into every container);
// containers join the pod's. NODE uses the host's.
import { mkdirSync, rmSync } from 'node:fs';
import { MNT_DETACH, MS, native } from '../../../../native/index.js';
import type { ContainerConfig, ContainerId, LaunchInfo } from '../../isolator.js';
import { idString } from '../../isolator.js';
import { LaunchOnlyIsolator, parentNs } from '../base.js';

export class IpcNamespaceIsolator extends LaunchOnlyIsolator {
  readonly name = 'namespaces/ipc';
  private readonly shm = new Map<string, string>();

  constructor(private readonly shmSizeBytes: number) {
    super();
  }

  override async recover(configs: ContainerConfig[]): Promise<void> {
    for (const c of configs) if (c.kind === 'pod' && c.shmPath) this.shm.set(idString(c.id), c.shmPath);
  }

  async prepare(config: ContainerConfig): Promise<Partial<LaunchInfo>> {
    if (config.kind === 'container') return config.namespaces.ipc === 'NODE' ? {} : { enterNamespaces: [parentNs(config, 'ipc')] };
    if (config.namespaces.ipc === 'NODE') return {};
    if (config.shmPath) {
      mkdirSync(config.shmPath, { recursive: true, mode: 0o755 });
      native().mount('shm', config.shmPath, 'tmpfs', MS.NOSUID | MS.NODEV | MS.NOEXEC, `mode=1777,size=${this.shmSizeBytes}`);
      this.shm.set(idString(config.id), config.shmPath);
    }
    return { cloneNamespaces: ['ipc'] };
  }

  override async cleanup(id: ContainerId): Promise<void> {
    const path = this.shm.get(idString(id));
    if (!path) return;
    try {
      native().umount2(path, MNT_DETACH);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EINVAL' && code !== 'ENOENT') throw err;
    }
    rmSync(path, { recursive: true, force: true });
    this.shm.delete(idString(id));
  }
}

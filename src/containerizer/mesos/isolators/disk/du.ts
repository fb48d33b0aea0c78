// disk/du: the bytes and inodes of each container's writable layer (the overlay's upper dir), as
// Mesos' disk/du isolator reports disk_used_bytes: walked in the background by a
// DiskUsageWatcher (util/disk-usage.ts: bounded cost), read from its last result by usage().
// Pods have no writable layer of their own. Nothing is limited: CRI has no disk limit.
import type { DiskUsageWatcher } from '../../../../util/disk-usage.js';
import { idString, type ContainerConfig, type ContainerId, type LaunchInfo, type ResourceStatistics } from '../../isolator.js';
import { LaunchOnlyIsolator } from '../base.js';

export class DiskDuIsolator extends LaunchOnlyIsolator {
  readonly name = 'disk/du';

  /**
   * upperDir: a container's writable layer (the provisioner's); filesystem: a directory on the
   * filesystem that holds them (CRI's fs_id.mountpoint).
   */
  constructor(
    private readonly watcher: DiskUsageWatcher,
    private readonly upperDir: (containerId: string) => string,
    private readonly filesystem: string,
  ) {
    super();
  }

  private watch(config: ContainerConfig): void {
    if (config.kind === 'container' && config.rootfs) this.watcher.watch(idString(config.id), this.upperDir(config.id.value));
  }

  override async recover(configs: ContainerConfig[]): Promise<void> {
    for (const c of configs) this.watch(c);
  }

  async prepare(config: ContainerConfig): Promise<Partial<LaunchInfo> | undefined> {
    this.watch(config);
    return undefined;
  }

  override async usage(id: ContainerId): Promise<Partial<ResourceStatistics>> {
    const u = this.watcher.get(idString(id));
    return u ? { diskUsedBytes: u.bytes, diskUsedInodes: u.inodes, diskSampledAt: u.at / 1000, diskFilesystem: this.filesystem } : {};
  }

  override async cleanup(id: ContainerId): Promise<void> {
    this.watcher.unwatch(idString(id));
  }
}

// Overlay provisioner: one overlayfs per container, mounted on the host at
// <root>/<containerId>/rootfs with the image's layer dirs as lowerdirs and a
// private upper/work pair. The container's mount namespace later takes the
// rootfs over (pivot_root); destroy detaches our host mount and removes it all.
import { lstat, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { native, MNT_DETACH } from '../native/index.js';
import { faultPoint } from '../fault.js';
import { parseMountInfoEntries } from '../util/mountinfo.js';
import { errCode } from '../images/fsutil.js';
import type { ImageRecord, ImageStore } from '../images/store.js';

/** Linux refuses mount data longer than one page. */
const MAX_MOUNT_DATA = 4095;

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export interface ProvisionResult {
  rootfs: string;
}

export class Provisioner {
  constructor(
    readonly root: string,
    readonly store: ImageStore,
  ) {}

  containerDir(containerId: string): string {
    if (!ID.test(containerId) || containerId === '.' || containerId === '..') {
      throw new Error(`invalid container id ${JSON.stringify(containerId)}`);
    }
    return join(this.root, containerId);
  }

  rootfsPath(containerId: string): string {
    return join(this.containerDir(containerId), 'rootfs');
  }

  /**
   * Create upper/work/rootfs and mount the overlay. Idempotent: an already
   * mounted rootfs is returned as is (a retried CreateContainer).
   */
  async provision(containerId: string, image: ImageRecord): Promise<ProvisionResult> {
    const dir = this.containerDir(containerId);
    const rootfs = join(dir, 'rootfs');
    if (await this.isMounted(containerId)) return { rootfs };
    let lowers = this.store.layerDirs(image);
    for (const l of lowers) {
      const st = await lstat(l).catch(() => undefined);
      if (!st?.isDirectory()) throw new Error(`image ${image.id}: layer dir ${l} is missing; re-import the image`);
    }
    await mkdir(this.root, { recursive: true, mode: 0o711 });
    await mkdir(dir, { mode: 0o711 }).catch((e: unknown) => {
      if (errCode(e) !== 'EEXIST') throw e;
    });
    for (const d of ['upper', 'work', 'rootfs']) {
      await mkdir(join(dir, d), { mode: 0o755 }).catch((e: unknown) => {
        if (errCode(e) !== 'EEXIST') throw e;
      });
    }
    if (lowers.length === 0) {
      // An image without layers (scratch): overlay still needs one lowerdir.
      const empty = join(dir, 'empty');
      await mkdir(empty, { mode: 0o755 }).catch(() => {});
      lowers = [empty];
    }
    for (const p of [...lowers, dir]) {
      // ',' and ':' separate overlay options and lowerdirs; our paths never have them, refuse if they do.
      if (/[,:\\]/.test(p)) throw new Error(`overlay path ${p} contains ',', ':' or '\\'`);
    }
    const data = `lowerdir=${lowers.join(':')},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`;
    if (data.length > MAX_MOUNT_DATA) {
      throw new Error(`image ${image.id} has too many layers (${lowers.length}) for one overlay mount under ${this.root}`);
    }
    faultPoint('rootfs-mount:before');
    native().mount('overlay', rootfs, 'overlay', 0, data);
    faultPoint('rootfs-mount:after');
    return { rootfs };
  }

  /** Whether the container's rootfs is a mount point now. */
  async isMounted(containerId: string): Promise<boolean> {
    return isMountPoint(this.rootfsPath(containerId));
  }

  /**
   * Unmount (lazily: the container's own namespace may still hold it) and
   * remove everything of the container. Idempotent.
   */
  async destroy(containerId: string): Promise<void> {
    const dir = this.containerDir(containerId);
    const rootfs = join(dir, 'rootfs');
    // Mounts can stack (a provision retried after a crash); peel all of them. EINVAL: nothing mounted there.
    for (let i = 0; i < 16; i++) {
      try {
        native().umount2(rootfs, MNT_DETACH);
      } catch (e) {
        const c = errCode(e);
        if (c !== 'EINVAL' && c !== 'ENOENT') throw e;
        break;
      }
    }
    if (await isMountPoint(rootfs)) {
      // Never rm -rf through a live mount.
      throw new Error(`cannot remove ${dir}: ${rootfs} is still mounted`);
    }
    await rm(dir, { recursive: true, force: true });
  }

  /**
   * After a daemon restart: keep the dirs (and mounts) of known containers,
   * destroy those of unknown ones. Returns the ids removed.
   */
  async recover(knownIds: string[]): Promise<string[]> {
    const known = new Set(knownIds);
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (e) {
      if (errCode(e) === 'ENOENT') return [];
      throw e;
    }
    const removed: string[] = [];
    for (const n of names) {
      if (known.has(n) || !ID.test(n)) continue;
      await this.destroy(n);
      removed.push(n);
    }
    return removed;
  }
}

/**
 * A mount point sits on another device than its parent directory. Two stats,
 * where reading /proc/self/mountinfo grows with every container running (it
 * made creating and removing 1000 containers quadratic).
 */
export async function isMountPoint(path: string): Promise<boolean> {
  try {
    const [self, parent] = await Promise.all([lstat(path), lstat(dirname(path))]);
    return self.dev !== parent.dev;
  } catch (e) {
    if (errCode(e) === 'ENOENT') return false;
    throw e;
  }
}

/** Mount points of our mount namespace. */
export async function mountPoints(): Promise<Set<string>> {
  return new Set(parseMountInfoEntries(await readFile('/proc/self/mountinfo', 'utf8')).map((e) => e.mountPoint));
}

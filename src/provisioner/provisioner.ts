// Overlay provisioner: one overlayfs per container, mounted on the host at
// <root>/<containerId>/rootfs with the image's layer dirs as lowerdirs and a
// private upper/work pair. The container's mount namespace later takes the
// rootfs over (pivot_root); destroy detaches our host mount and removes it all.
//
// A container in a pod's user namespace gets an overlay whose lowerdirs are the layers
// idmapped with that namespace (an overlay cannot be idmapped itself; over idmapped layers it
// works from Linux 5.19), as containerd's overlay does for user namespaces: the image's root
// files show as the namespace's root, and no layer, shared by every container of the image, is
// ever chowned. The upper dir is this container's alone: its root is chowned to the namespace
// root's host ids (the rootfs' "/" is the upper dir's), and what the container writes lands
// there owned by its host ids. Each idmapped layer is attached under idmapped/<n> only while
// the overlay is mounted (overlay keeps its own reference), and the rootfs' parents are made
// searchable (o+x, as Podman and CRI-O do), so that the namespace's root can reach it.
import { chmod, chown, mkdir, readdir, readFile, rm, rmdir, stat } from 'node:fs/promises';
import { existsSync, lstatSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { native, MNT_DETACH } from '../native/index.js';
import { faultPoint } from '../fault.js';
import { PROVISIONER_TRASH_PREFIX } from '../paths.js';
import { parseMountInfoEntries } from '../util/mountinfo.js';
import { errCode } from '../images/fsutil.js';
import { failedPrecondition } from '../errors.js';
import type { ImageRecord, ImageStore } from '../images/store.js';

/** Linux refuses mount data longer than one page. */
const MAX_MOUNT_DATA = 4095;

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export interface ProvisionResult {
  rootfs: string;
}

/** The rootfs of a container in a pod's user namespace. */
export interface RootfsIdmap {
  /** The namespace's file (/proc/<pid>/ns/user). */
  userns: string;
  /** Host uid and gid of the namespace's root (they own the upper dir). */
  rootUid: number;
  rootGid: number;
}


export class Provisioner {
  /** Trees being deleted in the background (destroy). */
  private readonly deleting = new Set<Promise<void>>();
  /** Told of a background delete that failed (the daemon logs it; recovery tries again). */
  onDeleteError: (dir: string, err: unknown) => void = () => {};
  /** What a removed container's tree waits for before it is unmounted and deleted (the daemon: a quiet moment between calls). */
  deleteWhen: () => Promise<void> = () => Promise.resolve();

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

  /** The overlay's upper dir: what the container wrote (its writable layer). */
  upperPath(containerId: string): string {
    return join(this.containerDir(containerId), 'upper');
  }

  /**
   * Create upper/work/rootfs and mount the overlay. Idempotent: an already
   * mounted rootfs is returned as is (a retried CreateContainer).
   */
  async provision(containerId: string, image: ImageRecord, idmap?: RootfsIdmap): Promise<ProvisionResult> {
    const dir = this.containerDir(containerId);
    const rootfs = join(dir, 'rootfs');
    if (isMountPointSync(rootfs)) return { rootfs };
    // In the calling thread: a few lstats and mkdirs of local dirs (tens of µs each), where each
    // await on fs/promises was a thread-pool round trip (the launch's provision step).
    let lowers = this.store.layerDirs(image);
    for (const l of lowers) {
      let isDir = false;
      try {
        isDir = lstatSync(l).isDirectory();
      } catch {
        // missing: refused below
      }
      if (!isDir) throw new Error(`image ${image.id}: layer dir ${l} is missing; re-import the image`);
    }
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
    for (const d of [dir, join(dir, 'upper'), join(dir, 'work'), rootfs]) {
      try {
        mkdirSync(d, { mode: d === dir ? 0o711 : 0o755 });
      } catch (e) {
        if (errCode(e) !== 'EEXIST') throw e;
      }
    }
    if (lowers.length === 0) {
      // An image without layers (scratch): overlay still needs one lowerdir.
      const empty = join(dir, 'empty');
      try {
        mkdirSync(empty, { mode: 0o755 });
      } catch {
        // there already
      }
      lowers = [empty];
    }
    for (const p of [...lowers, dir]) {
      // ',' and ':' separate overlay options and lowerdirs; our paths never have them, refuse if they do.
      if (/[,:\\]/.test(p)) throw new Error(`overlay path ${p} contains ',', ':' or '\\'`);
    }
    if (idmap) return this.mountIdmapped(dir, rootfs, lowers, idmap, image);
    const data = `lowerdir=${lowers.join(':')},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`;
    if (data.length > MAX_MOUNT_DATA) {
      throw new Error(`image ${image.id} has too many layers (${lowers.length}) for one overlay mount under ${this.root}`);
    }
    faultPoint('rootfs-mount:before');
    native().mount('overlay', rootfs, 'overlay', 0, data);
    faultPoint('rootfs-mount:after');
    return { rootfs };
  }

  /** The overlay over idmapped layers (see the top); the staging mounts are gone when it returns. */
  private async mountIdmapped(dir: string, rootfs: string, lowers: string[], idmap: RootfsIdmap, image: ImageRecord): Promise<ProvisionResult> {
    const stage = join(dir, 'idmapped');
    const staged: string[] = [];
    await mkdir(stage, { mode: 0o700 }).catch((e: unknown) => {
      if (errCode(e) !== 'EEXIST') throw e;
    });
    try {
      for (const [i, layer] of lowers.entries()) {
        const fd = await native()
          .idmappedTree(layer, idmap.userns, false)
          .catch((err: unknown) => {
            const code = errCode(err);
            const call = (err as NodeJS.ErrnoException).syscall;
            const why =
              code === 'ENOSYS'
                ? 'this kernel has no idmapped mounts (Linux 5.12+; an overlay over idmapped layers needs 5.19+)'
                : call === 'mount_setattr' && (code === 'EINVAL' || code === 'EPERM')
                  ? 'its filesystem does not support idmapped mounts'
                  : (err as Error).message;
            throw failedPrecondition(`the rootfs of a container in a user namespace needs the image's layers idmapped: layer ${layer} of image ${image.id}: ${why}`, err);
          });
        const target = join(stage, String(i));
        try {
          await mkdir(target, { mode: 0o700 }).catch((e: unknown) => {
            if (errCode(e) !== 'EEXIST') throw e;
          });
          native().moveMount(fd, target);
          staged.push(target);
        } finally {
          native().close(fd);
        }
      }
      const data = `lowerdir=${staged.join(':')},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`;
      if (data.length > MAX_MOUNT_DATA) throw new Error(`image ${image.id} has too many layers (${lowers.length}) for one overlay mount under ${this.root}`);
      // The upper dir is this container's own: its root is the namespace root's.
      await chown(join(dir, 'upper'), idmap.rootUid, idmap.rootGid);
      faultPoint('rootfs-mount:before');
      try {
        native().mount('overlay', rootfs, 'overlay', 0, data);
      } catch (err) {
        if (errCode(err) === 'EINVAL') throw failedPrecondition(`overlay over idmapped layers was refused (EINVAL): it needs Linux 5.19+ (image ${image.id})`, err);
        throw err;
      }
      faultPoint('rootfs-mount:after');
      await makeSearchable(rootfs);
    } finally {
      await unstage(stage);
    }
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
    // Idmapped layers a crash left attached: detached first, never removed through.
    if (existsSync(join(dir, 'idmapped'))) await unstage(join(dir, 'idmapped'));
    // Unmounting the overlay syncs its upper filesystem (about 6 ms here) and a recursive delete
    // is a thread-pool round trip per entry: the dir, its mounted rootfs with it, is renamed out
    // of the way at once (gone under its id for every reader; RemoveContainer answers), then
    // unmounted on a pool thread and deleted in the background, once the calls pause (deleteWhen:
    // on 2 CPUs the delete's thread-pool work made the Remove's own answer slower). A crash
    // before that ends leaves a PROVISIONER_TRASH_PREFIX dir, which recover() unmounts and deletes.
    const trash = join(this.root, `${PROVISIONER_TRASH_PREFIX}${containerId}`);
    try {
      renameSync(dir, trash);
    } catch (e) {
      const c = errCode(e);
      if (c === 'ENOENT') return;
      if (c !== 'ENOTEMPTY' && c !== 'EEXIST') throw e;
      // A trash of the same id left by an earlier crash: both go now.
      await deleteTree(trash);
      await deleteTree(dir);
      return;
    }
    faultPoint('remove-rootfs:renamed');
    const done = this.deleteWhen()
      .then(() => deleteTree(trash))
      .catch((err: unknown) => this.onDeleteError(trash, err))
      .finally(() => this.deleting.delete(done));
    this.deleting.add(done);
  }

  /** Resolves once the trees destroy() is deleting in the background are gone (daemon stop, tests). */
  async deleted(): Promise<void> {
    while (this.deleting.size > 0) await Promise.all([...this.deleting]);
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
      // A removed container's tree whose background delete a crash cut short.
      if (n.startsWith(PROVISIONER_TRASH_PREFIX)) {
        await deleteTree(join(this.root, n));
        continue;
      }
      if (known.has(n) || !ID.test(n)) continue;
      await this.destroy(n);
      removed.push(n);
    }
    return removed;
  }
}

/** A container dir: its rootfs unmounted (every stacked mount), checked, then the tree deleted. */
async function deleteTree(dir: string): Promise<void> {
  const rootfs = join(dir, 'rootfs');
  await unstage(join(dir, 'idmapped'));
  // Mounts can stack (a provision retried after a crash); peel all of them. EINVAL: nothing mounted there.
  for (let i = 0; i < 16; i++) {
    try {
      await native().umount2Async(rootfs, MNT_DETACH);
    } catch (e) {
      const c = errCode(e);
      if (c !== 'EINVAL' && c !== 'ENOENT') throw e;
      break;
    }
  }
  // Never rm -rf through a live mount.
  if (await isMountPoint(rootfs)) throw new Error(`cannot remove ${dir}: ${rootfs} is still mounted`);
  await rm(dir, { recursive: true, force: true });
}

/**
 * Detach and remove every idmapped/<n> staging mount point (an image layer while attached);
 * one that stays mounted is an error, and the dir is never removed through it.
 */
async function unstage(stage: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(stage);
  } catch (e) {
    if (errCode(e) === 'ENOENT') return;
    throw e;
  }
  for (const n of names) {
    const target = join(stage, n);
    for (let i = 0; i < 16; i++) {
      try {
        native().umount2(target, MNT_DETACH);
      } catch (e) {
        const c = errCode(e);
        if (c !== 'EINVAL' && c !== 'ENOENT') throw e;
        break;
      }
    }
    if (await isMountPoint(target)) throw new Error(`cannot remove ${target}: an image layer is still mounted there`);
    await rmdir(target).catch((e: unknown) => {
      if (errCode(e) !== 'ENOENT') throw e;
    });
  }
  await rmdir(stage).catch((e: unknown) => {
    if (errCode(e) !== 'ENOENT') throw e;
  });
}

/** Every directory above `path` searchable by others (o+x; read is not given), as Podman's makeAccessible. */
async function makeSearchable(path: string): Promise<void> {
  for (let p = dirname(path); p !== '/' && p !== '.'; p = dirname(p)) {
    const st = await stat(p);
    if ((st.mode & 0o001) === 0) await chmod(p, (st.mode & 0o7777) | 0o001);
  }
}

/**
 * A mount point sits on another device than its parent directory. Two stats,
 * where reading /proc/self/mountinfo grows with every container running (it
 * made creating and removing 1000 containers quadratic).
 */
/** Whether `path` is a mount point: its device differs from its parent's (two lstats, in the calling thread). */
export function isMountPointSync(path: string): boolean {
  try {
    return lstatSync(path).dev !== lstatSync(dirname(path)).dev;
  } catch (e) {
    if (errCode(e) === 'ENOENT') return false;
    throw e;
  }
}

export async function isMountPoint(path: string): Promise<boolean> {
  return isMountPointSync(path);
}

/** Mount points of our mount namespace. */
export async function mountPoints(): Promise<Set<string>> {
  return new Set(parseMountInfoEntries(await readFile('/proc/self/mountinfo', 'utf8')).map((e) => e.mountPoint));
}

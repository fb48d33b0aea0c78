// LinuxLauncher (src/slave/containerizer/mesos/linux_launcher.cpp): every
// container has a freezer cgroup (v1 freezer, or its cgroup2 dir); the child
// is held on a pipe until it is in it, and destroy = freeze → SIGKILL → thaw
// (cgroup.kill on v2), so nothing a container forked can escape.
import { readdir } from 'node:fs/promises';
import { native, type SpawnOptions, type SpawnedChild } from '../../../native/index.js';
import { addProcess, cgroupPathFor, normalizeCgroupParent, removeCgroup, V2_LEAF, type Cgroups } from '../../../cgroups/index.js';
import type { Logger } from '../../../log.js';
import type { ContainerConfig } from '../isolator.js';
import type { KnownContainer, Launcher } from './launcher.js';
import { faultPoint } from '../../../fault.js';
import type { Steps } from '../../../util/steps.js';

export class LinuxLauncher implements Launcher {
  readonly name = 'linux';
  readonly cloneIntoCgroup: boolean;
  /** Pool cgroups of this daemon's pod pool (pool ids): recovery's sweep leaves them be. */
  private readonly livePool = new Set<string>();

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

  async fork(config: ContainerConfig, spec: SpawnOptions, isolate: (heldPid: number) => Promise<void>, steps?: Steps): Promise<SpawnedChild> {
    const dir = await this.cgroups.createFreezer(this.rel(config));
    steps?.mark('freezer cgroup');
    faultPoint('spawn:before');
    const held = await native().spawnHeld(spec);
    faultPoint('spawn:after');
    steps?.mark('spawn');
    try {
      // Freezer first: destroy kills by freezer membership, so the child must never run outside it.
      await addProcess(dir, held.pid);
      steps?.mark('freezer join');
      await isolate(held.pid);
      steps?.mark('isolate');
    } catch (err) {
      native().abort(held);
      throw err;
    }
    faultPoint('release:before');
    const child = await native().release(held);
    faultPoint('release:after');
    steps?.mark('release');
    return child;
  }

  /**
   * The pod pool (pod-pool.ts): a pause helper cloned and held as fork() does, in a freezer cgroup
   * of its own under the root (`pool-<id>`), where destroy and recovery can kill it.
   */
  async spawnPooled(poolId: string, spec: SpawnOptions): Promise<SpawnedChild> {
    const rel = this.poolRel(poolId);
    this.livePool.add(poolId);
    const dir = await this.cgroups.createFreezer(rel);
    const held = await native().spawnHeld(spec);
    try {
      await addProcess(dir, held.pid);
    } catch (err) {
      native().abort(held);
      throw err;
    }
    return native().release(held);
  }

  /**
   * A pooled helper taken by a pod: into the pod's freezer cgroup first (the pool's kill can no
   * longer reach it), then `isolate` places it in the other hierarchies, as fork() does with a held child.
   */
  async adopt(config: ContainerConfig, pid: number, isolate: (pid: number) => Promise<void>, steps?: Steps): Promise<void> {
    const dir = await this.cgroups.createFreezer(this.rel(config));
    steps?.mark('freezer cgroup');
    await addProcess(dir, pid);
    steps?.mark('freezer join');
    await isolate(pid);
    steps?.mark('isolate');
  }

  /** Remove a pool cgroup; with `kill`, kill whatever is left in it first (not for one a pod took its helper from). */
  async dropPooled(poolId: string, kill = true): Promise<void> {
    const rel = this.poolRel(poolId);
    try {
      if (kill) await this.cgroups.freezerKill(rel);
      const dir = this.cgroups.freezerDir(rel);
      if (dir) await removeCgroup(dir);
    } finally {
      this.livePool.delete(poolId);
    }
  }

  private poolRel(poolId: string): string {
    return [normalizeCgroupParent(this.root), `pool-${poolId}`].filter(Boolean).join('/');
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

  /**
   * Orphans: cgroups under our root, or under a known pod (nested containers, also below a
   * kubelet cgroup_parent), that no checkpoint knows. The containerizer checkpoints a container
   * before it creates any cgroup, so these come from older versions or hands. Killed, removed,
   * logged with their paths. A quarantined pod (no cgroup parent known) is assumed under our root.
   */
  async recover(configs: KnownContainer[]): Promise<string[]> {
    const known = new Set<string>();
    const walkFrom = new Set([normalizeCgroupParent(this.root)]);
    for (const c of configs) {
      const rel = this.rel(c as ContainerConfig);
      known.add(rel);
      if (c.kind === 'pod') walkFrom.add(rel);
    }
    const orphans: string[] = [];
    for (const base of walkFrom) {
      const dir = this.cgroups.freezerDir(base);
      if (!dir) continue;
      for (const child of await childNames(dir)) {
        const rel = `${base}/${child}`;
        if (child === V2_LEAF || known.has(rel)) continue;
        // A pooled pause helper of a daemon that died: it never became a pod.
        const pool = POOL_CGROUP.exec(child);
        if (pool && base === normalizeCgroupParent(this.root)) {
          if (this.livePool.has(pool[1]!)) continue;
          try {
            await this.cgroups.freezerKill(rel);
            await this.cgroups.removeEverywhere(rel);
            this.log.debug('removed a pool cgroup of an earlier run', { cgroup: rel });
          } catch (err) {
            this.log.warn('removing a pool cgroup of an earlier run failed', { cgroup: rel, error: String(err) });
          }
          continue;
        }
        // Not a cgroup of ours: a cgroup_parent a client put under our root (e.g. kubepods), on
        // the way to containers we know, or something else's. Only container ids are orphans.
        if (!CONTAINER_ID.test(child) || [...known].some((k) => k.startsWith(`${rel}/`))) continue;
        orphans.push(rel);
        try {
          await this.cgroups.freezerKill(rel);
          await this.cgroups.removeEverywhere(rel);
        } catch (err) {
          this.log.warn('cleaning up orphan cgroup failed', { cgroup: rel, error: String(err) });
        }
      }
    }
    return orphans;
  }
}

/** A pod pool's cgroup under the root: pool-<pool id>. */
export const POOL_CGROUP = /^pool-([0-9a-f]{16})$/;

/** A container id as cri-mesos makes them (newId: 32 random bytes in hex). */
const CONTAINER_ID = /^[0-9a-f]{64}$/;

/** Sub-directories (child cgroups) of `dir`; none when it does not exist. */
async function childNames(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

// The host's cgroup hierarchies, detected once, and the operations the launcher and isolators use.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseMountInfo, type V1Mount } from './mountinfo.js';
import {
  createCgroup,
  killAll,
  removeCgroup,
  type KillOptions,
  type RemoveOptions,
} from './fs.js';

export interface V2Hierarchy {
  mountPoint: string;
  /** Controllers available at the root (cgroup.controllers). */
  controllers: ReadonlySet<string>;
}

function readControllersFile(mountPoint: string): string {
  try {
    return readFileSync(join(mountPoint, 'cgroup.controllers'), 'utf8');
  } catch {
    return '';
  }
}

export class Cgroups {
  private constructor(
    private readonly v1mounts: readonly V1Mount[],
    private readonly v2h: V2Hierarchy | undefined,
  ) {}

  /** Read /proc/self/mountinfo (synchronous: called once at daemon start). */
  static detect(mountinfoPath = '/proc/self/mountinfo'): Cgroups {
    return Cgroups.fromMountInfo(readFileSync(mountinfoPath, 'utf8'));
  }

  /** For tests: build from mountinfo text; `readControllers` returns a cgroup2 root's cgroup.controllers. */
  static fromMountInfo(text: string, readControllers: (mountPoint: string) => string = readControllersFile): Cgroups {
    const parsed = parseMountInfo(text);
    const v2 = parsed.v2
      ? {
          mountPoint: parsed.v2.mountPoint,
          controllers: new Set(readControllers(parsed.v2.mountPoint).split(/\s+/).filter(Boolean)),
        }
      : undefined;
    return new Cgroups(parsed.v1, v2);
  }

  /** Mount point of the v1 hierarchy carrying `controller` ('cpu', 'memory', 'name=systemd', ...). */
  v1(controller: string): string | undefined {
    return this.v1mounts.find((m) => m.controllers.includes(controller))?.mountPoint;
  }

  /** Every v1 hierarchy (one entry per mount, comounted controllers together). */
  v1Hierarchies(): readonly V1Mount[] {
    return this.v1mounts;
  }

  /** cgroup2 mount point: /sys/fs/cgroup on pure v2, /sys/fs/cgroup/unified on hybrid hosts. */
  v2Root(): string | undefined {
    return this.v2h?.mountPoint;
  }

  v2Controllers(): ReadonlySet<string> {
    return this.v2h?.controllers ?? new Set();
  }

  hasV2Controller(controller: string): boolean {
    return this.v2h?.controllers.has(controller) ?? false;
  }

  /** Mount points of all hierarchies (v1 and cgroup2), each once. */
  allMountPoints(): string[] {
    const out = new Set(this.v1mounts.map((m) => m.mountPoint));
    if (this.v2h) out.add(this.v2h.mountPoint);
    return [...out];
  }

  v1Path(controller: string, rel: string): string | undefined {
    const mp = this.v1(controller);
    return mp === undefined ? undefined : join(mp, rel);
  }

  v2Path(rel: string): string | undefined {
    return this.v2h ? join(this.v2h.mountPoint, rel) : undefined;
  }

  /** Create `rel` in the v1 hierarchy of `controller` (cpuset values copied down for cpuset). */
  async createV1(controller: string, rel: string): Promise<string> {
    const mp = this.v1(controller);
    if (mp === undefined) throw new Error(`cgroup v1 controller ${controller} is not mounted`);
    const m = this.v1mounts.find((h) => h.mountPoint === mp)!;
    return createCgroup(mp, rel, { cpuset: m.controllers.includes('cpuset') });
  }

  /** Create `rel` in the cgroup2 tree (no controllers enabled). */
  async createV2(rel: string): Promise<string> {
    if (!this.v2h) throw new Error('cgroup2 is not mounted');
    return createCgroup(this.v2h.mountPoint, rel);
  }

  // ---- launcher-facing ----

  /** The cgroup that tracks a container's processes: v1 freezer if mounted, else cgroup2. */
  freezerDir(rel: string): string | undefined {
    return this.v1Path('freezer', rel) ?? this.v2Path(rel);
  }

  /** Create the tracking cgroup (v1 freezer, else cgroup2) and return its absolute path. */
  async createFreezer(rel: string): Promise<string> {
    return this.v1('freezer') !== undefined ? this.createV1('freezer', rel) : this.createV2(rel);
  }

  /**
   * Kill every process of the container subtree at `rel` (freeze → SIGKILL → thaw on v1,
   * cgroup.kill on v2) and wait until none is left. Missing cgroup → nothing to do.
   */
  async freezerKill(rel: string, opts?: KillOptions): Promise<void> {
    const dir = this.freezerDir(rel);
    if (dir === undefined) throw new Error('no freezer: neither cgroup v1 freezer nor cgroup2 is mounted');
    await killAll(dir, opts);
  }

  /** rmdir `rel` (and descendants, bottom-up) in every hierarchy, v1 and cgroup2. */
  async removeEverywhere(rel: string, opts?: RemoveOptions): Promise<void> {
    if (!rel.split('/').some(Boolean)) throw new Error('refusing to remove a hierarchy root');
    const errors: unknown[] = [];
    for (const mp of this.allMountPoints()) {
      try {
        await removeCgroup(join(mp, rel), opts);
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `removing cgroup ${rel}: ${errors.length} hierarchies failed`);
  }
}

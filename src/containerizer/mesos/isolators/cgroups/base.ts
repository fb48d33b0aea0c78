// Shared machinery of the cgroups/{cpu,memory,pids,cpuset,hugetlb,devices} isolators: back-end choice (v1 hierarchy,
// cgroup2 controller, or nothing), the id → cgroup path map, create / join / remove. Each container
// gets its own cgroup (share_cgroups=false): pod → <parent|root>/<pod>, container → <pod>/<ctr>.
import { alreadyExists, notFound } from '../../../../errors.js';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../../../log.js';
import {
  Cgroups,
  addProcess,
  cgroupPathFor,
  createCgroup,
  forgetSlowFiles,
  readCgroupFileOpt,
  removeCgroup,
  v2ProcessPath,
  writeCgroupFile,
} from '../../../../cgroups/index.js';
import {
  ResourceError,
  idString,
  type ContainerConfig,
  type ContainerId,
  type Isolator,
  type IsolatorStatus,
  type LaunchInfo,
  type ResourceLimits,
  type ResourceStatistics,
} from '../../isolator.js';

export interface CgroupsIsolatorOptions {
  cgroups: Cgroups;
  /** Cgroup root name under every hierarchy, e.g. 'cri-mesos' (used when a pod has no cgroup_parent). */
  root: string;
  log: Logger;
}

export type Backend = 'v1' | 'v2' | 'none';

/** How a cgroup2 `unified` key is applied on v1: a v1 file and value, or 'default' when v1 already behaves so. */
export type V1Equivalent = { file: string; value: string } | 'default';

interface Spec {
  /** v1 controller that decides the back end (e.g. 'cpu'). */
  controller: string;
  /** Extra v1 hierarchies used when mounted (e.g. 'cpuacct' for cpu usage). */
  extraV1?: string[];
  /** cgroup2 needs no controller for this isolator (devices: a BPF program on the cgroup). */
  v2WithoutController?: boolean;
}

/** Whether `pid` is in the cgroup2 cgroup `path` (as /proc/<pid>/cgroup's "0::" line names it). */
async function inV2Cgroup(pid: number, path: string): Promise<boolean> {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').includes(`0::${path}`);
  } catch {
    return false;
  }
}

export abstract class CgroupsIsolatorBase implements Isolator {
  abstract readonly name: string;
  readonly supportsNesting = true;
  readonly prepareBehindAnswer = true;
  readonly backend: Backend;
  protected readonly cgroups: Cgroups;
  protected readonly root: string;
  protected readonly log: Logger;
  private readonly controller: string;
  /** cgroup2: enable the controller for the children of each level (false: there is none to enable). */
  private readonly v2Controller: boolean;
  /** v1: distinct mount points to create the cgroup in ([mountPoint, has cpuset]). */
  private readonly v1Mounts: Array<{ mountPoint: string; cpuset: boolean }> = [];
  private readonly paths = new Map<string, string>();

  protected constructor(opts: CgroupsIsolatorOptions, spec: Spec) {
    this.cgroups = opts.cgroups;
    this.root = opts.root;
    this.log = opts.log;
    this.controller = spec.controller;
    this.v2Controller = !spec.v2WithoutController;
    if (opts.cgroups.v1(spec.controller) !== undefined) {
      this.backend = 'v1';
      for (const c of [spec.controller, ...(spec.extraV1 ?? [])]) {
        const mp = opts.cgroups.v1(c);
        if (mp === undefined || this.v1Mounts.some((m) => m.mountPoint === mp)) continue;
        const h = opts.cgroups.v1Hierarchies().find((x) => x.mountPoint === mp);
        this.v1Mounts.push({ mountPoint: mp, cpuset: h?.controllers.includes('cpuset') ?? false });
      }
    } else if (spec.v2WithoutController ? opts.cgroups.v2Root() !== undefined : opts.cgroups.hasV2Controller(spec.controller)) {
      this.backend = 'v2';
    } else {
      this.backend = 'none';
      opts.log.warn('cgroup controller not available; isolator is a no-op', { controller: spec.controller });
    }
  }

  /** Relative cgroup path of a prepared/recovered container; throws for unknown ids. */
  protected rel(id: ContainerId): string {
    const rel = this.paths.get(idString(id));
    if (rel === undefined) throw notFound(`${this.name}: unknown container ${idString(id)}`);
    return rel;
  }

  /** Relative path if known (for tests and callers that want to look). */
  cgroupPath(id: ContainerId): string | undefined {
    return this.paths.get(idString(id));
  }

  /** Absolute dir of `rel` in the v1 hierarchy of `controller` (undefined if not mounted). */
  protected v1Dir(controller: string, rel: string): string | undefined {
    return this.cgroups.v1Path(controller, rel);
  }

  /** Absolute dir of `rel` in the cgroup2 tree (where limits are written). */
  protected v2Dir(rel: string): string {
    return join(this.cgroups.v2Root()!, rel);
  }

  async recover(configs: ContainerConfig[]): Promise<void> {
    for (const c of configs) this.paths.set(idString(c.id), cgroupPathFor(c, this.root));
  }

  async prepare(config: ContainerConfig): Promise<Partial<LaunchInfo> | undefined> {
    if (this.backend === 'none') return undefined;
    const rel = cgroupPathFor(config, this.root);
    const key = idString(config.id);
    if (this.paths.has(key)) throw alreadyExists(`${this.name}: container ${key} already prepared`);
    // Remember first so cleanup() removes whatever a failed prepare left behind.
    this.paths.set(key, rel);
    let launch: Partial<LaunchInfo> | undefined;
    if (this.backend === 'v1') {
      for (const m of this.v1Mounts) await createCgroup(m.mountPoint, rel, { cpuset: m.cpuset });
    } else {
      await this.createV2(rel);
      // Processes live in <path>/leaf (no-internal-processes rule); the launcher can clone into it.
      launch = { cgroupV2Dir: join(this.cgroups.v2Root()!, v2ProcessPath(rel)) };
    }
    this.log.debug('cgroup prepared', { isolator: this.name, container: key, path: rel, backend: this.backend });
    await this.update(config.id, config.resources);
    return launch;
  }

  /** mkdir every level (synchronous, as in cgroups/fs.ts: cgroupfs is memory), enabling our controller (if any) for the children of each ancestor, plus <rel>/leaf. */
  private async createV2(rel: string): Promise<void> {
    let cur = this.cgroups.v2Root()!;
    for (const part of rel.split('/').filter(Boolean)) {
      // Enabling a controller makes the kernel re-check its tasks under cgroup_threadgroup_rwsem,
      // which waits for an RCU grace period (ms): only write where it is not on yet.
      const on = !this.v2Controller || (await readCgroupFileOpt(cur, 'cgroup.subtree_control'))?.split(/\s+/).includes(this.controller);
      if (!on) await writeCgroupFile(cur, 'cgroup.subtree_control', `+${this.controller}`);
      cur = join(cur, part);
      mkdirSync(cur, { recursive: true });
    }
    mkdirSync(join(cur, 'leaf'), { recursive: true });
  }

  async isolate(id: ContainerId, pid: number): Promise<void> {
    if (this.backend === 'none') return;
    const rel = this.rel(id);
    if (this.backend === 'v1') {
      for (const m of this.v1Mounts) await addProcess(join(m.mountPoint, rel), pid);
    } else {
      const leaf = join(this.cgroups.v2Root()!, v2ProcessPath(rel));
      // Where the launcher clones straight into the leaf (CLONE_INTO_CGROUP), a second move
      // would wait for an RCU grace period for nothing.
      if (!(await inV2Cgroup(pid, '/' + v2ProcessPath(rel)))) await addProcess(leaf, pid);
    }
  }

  /** The `unified` keys of this isolator's controller ("memory.high" for cgroups/memory). */
  protected ownUnified(r: ResourceLimits): [string, string][] {
    return Object.entries(r.unified ?? {}).filter(([k]) => k.startsWith(`${this.controller}.`));
  }

  async check(resources: ResourceLimits): Promise<void> {
    for (const [key, value] of this.ownUnified(resources)) {
      if (this.backend === 'none') throw new ResourceError(`unified["${key}"]`, `the ${this.controller} cgroup controller is not available on this host`);
      if (this.backend === 'v1' && (await this.v1Equivalent(key, value, resources)) === undefined) {
        throw new ResourceError(`unified["${key}"]`, `"${value}" cannot be applied: the ${this.controller} controller is on cgroup v1, which has no equivalent`);
      }
    }
  }

  async update(id: ContainerId, resources: ResourceLimits): Promise<void> {
    if (this.backend === 'none') return;
    const rel = this.rel(id);
    // The limits read back by usage() are kept a while (cgroups/stats.ts): not past a write.
    if (this.backend === 'v1') for (const m of this.v1Mounts) forgetSlowFiles(join(m.mountPoint, rel));
    else forgetSlowFiles(this.v2Dir(rel));
    const unified = this.ownUnified(resources);
    if (this.backend === 'v1') {
      await this.updateV1(rel, resources);
      const dir = this.v1Dir(this.controller, rel)!;
      for (const [key, value] of unified) {
        const eq = await this.v1Equivalent(key, value, resources, dir);
        if (eq === undefined) throw new ResourceError(`unified["${key}"]`, `"${value}" has no cgroup v1 equivalent`);
        if (eq === 'default') this.log.info('unified key is what cgroup v1 does already; nothing to write', { path: rel, key, value });
        else await writeCgroupFile(dir, eq.file, eq.value);
      }
    } else {
      const dir = this.v2Dir(rel);
      await this.updateV2(dir, resources);
      // cgroup2: written as they are, after the CRI fields, so an explicit key wins.
      for (const [key, value] of unified) {
        try {
          await writeCgroupFile(dir, key, value);
        } catch (err) {
          throw new ResourceError(`unified["${key}"]`, (err as Error).message);
        }
      }
    }
  }

  /**
   * The v1 equivalent of a cgroup2 key of this controller, or undefined when there is none. `dir`
   * is the container's v1 cgroup when applying; absent when only checking.
   */
  protected async v1Equivalent(key: string, value: string, r: ResourceLimits, dir?: string): Promise<V1Equivalent | undefined> {
    void key;
    void value;
    void r;
    void dir;
    return undefined;
  }

  async usage(id: ContainerId): Promise<Partial<ResourceStatistics>> {
    if (this.backend === 'none') return {};
    const rel = this.rel(id);
    return this.backend === 'v1' ? this.usageV1(rel) : this.usageV2(this.v2Dir(rel));
  }

  async status(id: ContainerId): Promise<IsolatorStatus> {
    if (this.backend === 'none') return {};
    const rel = this.paths.get(idString(id));
    if (rel === undefined) return {};
    return this.backend === 'v1' ? this.statusV1(rel) : this.statusV2(this.v2Dir(rel));
  }

  async cleanup(id: ContainerId): Promise<void> {
    const key = idString(id);
    const rel = this.paths.get(key);
    if (rel === undefined || this.backend === 'none') return;
    if (this.backend === 'v1') {
      for (const m of this.v1Mounts) await removeCgroup(join(m.mountPoint, rel));
    } else {
      // Shared by all v2 isolators: whoever comes first removes it, the others see ENOENT.
      await removeCgroup(this.v2Dir(rel));
    }
    this.paths.delete(key);
    this.log.debug('cgroup removed', { isolator: this.name, container: key, path: rel });
  }

  protected abstract updateV1(rel: string, r: ResourceLimits): Promise<void>;
  protected abstract updateV2(dir: string, r: ResourceLimits): Promise<void>;
  protected async usageV1(_rel: string): Promise<Partial<ResourceStatistics>> {
    return {};
  }
  protected async usageV2(_dir: string): Promise<Partial<ResourceStatistics>> {
    return {};
  }
  protected async statusV1(_rel: string): Promise<IsolatorStatus> {
    return {};
  }
  protected async statusV2(_dir: string): Promise<IsolatorStatus> {
    return {};
  }
}

// The pod pool (issue 15): pause helpers cloned ahead of time in a pod's new namespaces, each
// blocked on reading its plan from fd 0. RunPodSandbox then takes one instead of cloning: the
// daemon moves it into the pod's cgroups (the same cgroup.procs writes as for a held child) and
// writes its plan; the clone of the intermediate and the helper, the exec and the helper's
// start-up (about a third of a host-network pod's launch here) are off the call. Refills wait
// for a quiet moment (no CRI call for QUIET_MS), so that they do not slow the calls down instead.
//
// Only where a launch writes cgroup.procs anyway (the linux launcher on a v1 freezer: with
// CLONE_INTO_CGROUP a move would add the write, and on cgroup2 each can wait for an RCU grace
// period), and only for pods that join no namespace and pass no fd (no CNI netns, no user
// namespace): the pool keeps helpers of the namespace set the last pod asked for.
//
// A pooled helper is in a freezer cgroup of its own, `<root>/pool-<id>`, and its diagnostics go
// to `<run>/pod-pool/<id>.log`. A daemon that dies leaves its helpers without a writer on their
// fd 0: each reads a plan without its `end` op and exits, and the next daemon's launcher recovery
// kills what is left in pool cgroups; the pool empties its dir at start.
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, rmSync, writeSync, constants as fsc } from 'node:fs';
import { launchHelperPath, native, type NamespaceType } from '../../../native/index.js';
import { podPoolDir, podPoolLog } from '../../../paths.js';
import type { Logger } from '../../../log.js';
import type { LinuxLauncher } from './linux.js';
import type { ContainerConfig } from '../isolator.js';
import type { Steps } from '../../../util/steps.js';
import { QUIET_MS, type Activity } from '../../../util/activity.js';

const SIGKILL = 9;
/** Refills start this long after a take at the earliest, and only once no CRI call has run for QUIET_MS. */
const REFILL_DELAY_MS = 50;
/** A handed-over helper's emptied pool cgroup is removed this long after, off the pod's launch. */
const HANDED_OVER_DROP_DELAY_MS = 20;
/** Helpers that die in the pool (or spawns that fail) in a row before the pool stops refilling. */
const MAX_FAILURES = 3;

export interface PooledHelper {
  readonly poolId: string;
  readonly pid: number;
  readonly pidfd: number;
  /** The write end of its fd 0: the plan goes here. */
  readonly planFd: number;
  /** The read end of its sync pipe ("ok" / "error ..."). */
  readonly syncFd: number;
  /** Resolves when it has exited and was reaped (the one wait on its pidfd). */
  readonly exited: Promise<unknown>;
  /** The diagnostics file the helper's fd 2 writes to. */
  readonly logPath: string;
}

interface Entry extends PooledHelper {
  taken: boolean;
}

export interface PodPoolOptions {
  size: number;
  launcher: LinuxLauncher;
  runtimeDir: string;
  log: Logger;
  /** The CRI calls: refills wait until none has run for QUIET_MS. Absent: refills do not wait. */
  activity?: Activity;
}

/**
 * Whether a daemon keeps a pod pool: asked for, and a launcher that writes cgroup.procs for every
 * launch anyway (a v1 freezer). With CLONE_INTO_CGROUP (cgroup2 without a v1 freezer) a cloned pod
 * needs no write, and moving a pooled helper would add one that can wait for an RCU grace period.
 */
export function podPoolApplies(size: number, launcher: Pick<LinuxLauncher, 'cloneIntoCgroup'>): boolean {
  return size > 0 && !launcher.cloneIntoCgroup;
}

/** The namespaces of a pod's launch as the pool keys them. */
export function poolKey(namespaces: NamespaceType[]): string {
  return [...new Set(namespaces)].sort().join(',');
}

export class PodPool {
  private readonly ready: Entry[] = [];
  private key = '';
  private timer: NodeJS.Timeout | undefined;
  private filling: Promise<void> | undefined;
  private failures = 0;
  private closed = false;
  /** Cgroup removals (and the waits before them) under way: close() waits for them. */
  private readonly pending = new Set<Promise<void>>();
  private readonly handedOverTimers = new Map<NodeJS.Timeout, PooledHelper>();

  constructor(private readonly opts: PodPoolOptions) {
    // What an earlier run left (its helpers are gone with it, or killed by the launcher's recovery).
    rmSync(podPoolDir(opts.runtimeDir), { recursive: true, force: true });
    mkdirSync(podPoolDir(opts.runtimeDir), { recursive: true, mode: 0o700 });
  }

  /**
   * A helper cloned in these namespaces, or undefined (none ready, or the pool was filled for
   * others). Either way the pool is refilled for these, shortly after.
   */
  take(namespaces: NamespaceType[]): PooledHelper | undefined {
    if (this.closed) return undefined;
    const key = poolKey(namespaces);
    if (key !== this.key) {
      this.key = key;
      for (const e of this.ready.splice(0)) this.discard(e);
    }
    const e = this.ready.shift();
    if (e) {
      e.taken = true;
      this.failures = 0;
    }
    this.schedule();
    return e;
  }

  /** A helper taken and not handed over (the pod's launch failed before its plan was written): killed. */
  discard(h: PooledHelper): void {
    closeQuietly(h.planFd);
    closeQuietly(h.syncFd);
    try {
      native().pidfdSendSignal(h.pidfd, SIGKILL);
    } catch {
      // exited already
    }
    this.track(
      h.exited.then(
        () => this.drop(h, true),
        () => this.drop(h, true),
      ),
    );
  }

  /** Move a taken helper into its pod's cgroups (LinuxLauncher.adopt). */
  adopt(config: ContainerConfig, h: PooledHelper, isolate: (pid: number) => Promise<void>, steps?: Steps): Promise<void> {
    return this.opts.launcher.adopt(config, h.pid, isolate, steps);
  }

  /**
   * A helper handed over to a pod: its pool cgroup is empty now and goes (no kill: a freeze and a
   * thaw of it kept the event loop for 3-10 ms), after the pod's answer.
   */
  handedOver(h: PooledHelper): void {
    const timer = setTimeout(() => {
      this.handedOverTimers.delete(timer);
      this.track(this.drop(h, false));
    }, HANDED_OVER_DROP_DELAY_MS);
    this.handedOverTimers.set(timer, h);
  }

  /** Its pool cgroup removed; `ours`: it never became a pod (its pidfd and log are the pool's, and the cgroup is killed first). */
  private async drop(h: PooledHelper, ours: boolean): Promise<void> {
    if (ours) {
      closeQuietly(h.pidfd);
      rmSync(h.logPath, { force: true });
    }
    try {
      await this.opts.launcher.dropPooled(h.poolId, ours);
    } catch (err) {
      this.opts.log.warn('removing a pool cgroup failed', { pool: h.poolId, error: String(err) });
    }
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Kill every helper still in the pool and remove every pool cgroup (the daemon stops). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.filling;
    for (const [timer, h] of this.handedOverTimers) {
      clearTimeout(timer);
      this.track(this.drop(h, false));
    }
    this.handedOverTimers.clear();
    for (const e of this.ready.splice(0)) this.discard(e);
    await Promise.all([...this.pending]);
  }

  private schedule(delayMs = REFILL_DELAY_MS): void {
    if (this.closed || this.timer || this.opts.size === 0 || this.failures >= MAX_FAILURES) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.filling ??= this.fill().finally(() => (this.filling = undefined));
    }, delayMs);
    this.timer.unref();
  }

  private async fill(): Promise<void> {
    while (!this.closed && this.ready.length < this.opts.size && this.failures < MAX_FAILURES) {
      // Not while calls run: the refill's clone and exec would take their CPU.
      const wait = this.opts.activity?.untilQuiet(QUIET_MS) ?? 0;
      if (wait > 0) {
        this.schedule(Math.ceil(wait));
        return;
      }
      const key = this.key;
      let e: Entry;
      try {
        e = await this.spawn(key);
      } catch (err) {
        this.failures++;
        this.opts.log.warn('pod pool: spawning a pause helper failed', { error: String(err), failures: this.failures });
        continue;
      }
      if (this.closed || key !== this.key) {
        this.discard(e);
        continue;
      }
      this.ready.push(e);
    }
  }

  private async spawn(key: string): Promise<Entry> {
    const poolId = randomBytes(8).toString('hex');
    const logPath = podPoolLog(this.opts.runtimeDir, poolId);
    const [planRead, planFd] = native().pipe();
    const [syncFd, syncWrite] = native().pipe();
    let diagFd = -1;
    let child;
    try {
      diagFd = openSync(logPath, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o600);
      child = await this.opts.launcher.spawnPooled(poolId, {
        file: launchHelperPath(),
        argv: ['cri-mesos-launch', 'pause', '-'],
        env: [],
        // The cgroup namespace is made at the handover, once it is in the pod's cgroups.
        cloneNamespaces: key.split(',').filter((n): n is NamespaceType => n !== '' && n !== 'cgroup'),
        joinNamespaces: [],
        stdio: [planRead, -1, diagFd],
        extraFds: [syncWrite],
      });
    } catch (err) {
      closeQuietly(planFd);
      closeQuietly(syncFd);
      rmSync(logPath, { force: true });
      await this.opts.launcher.dropPooled(poolId).catch(() => undefined);
      throw err;
    } finally {
      closeQuietly(planRead);
      closeQuietly(syncWrite);
      if (diagFd >= 0) closeSync(diagFd);
    }
    const e: Entry = { poolId, pid: child.pid, pidfd: child.pidfd, planFd, syncFd, logPath, taken: false, exited: native().waitPidfd(child.pidfd) };
    e.exited.then(
      () => this.diedInPool(e),
      () => this.diedInPool(e),
    );
    return e;
  }

  /** A helper that exits before any pod took it: out of the pool, and counted against refilling. */
  private diedInPool(e: Entry): void {
    if (e.taken) return;
    const i = this.ready.indexOf(e);
    if (i < 0) return;
    this.ready.splice(i, 1);
    this.failures++;
    this.opts.log.warn('pod pool: a pause helper exited while waiting for a pod', { pid: e.pid, failures: this.failures });
    this.discard(e);
  }
}

/** Write a whole plan to a pooled helper's fd 0 and close it. */
export function writePlan(h: PooledHelper, plan: string): void {
  const buf = Buffer.from(plan);
  try {
    let off = 0;
    while (off < buf.length) off += writeSync(h.planFd, buf, off);
  } finally {
    closeSync(h.planFd);
  }
}

function closeQuietly(fd: number): void {
  try {
    native().close(fd);
  } catch {
    // closed already
  }
}

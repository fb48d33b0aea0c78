// MesosContainerizer (src/slave/containerizer/mesos/containerizer.cpp):
// STARTING → PROVISIONING → PREPARING → ISOLATING → FETCHING → RUNNING → DESTROYING.
// CRI's Create/Start split sits at FETCHING: the launch helper has set the
// container up and waits on its exec FIFO until start() writes the byte.
import { listDir } from '../../util/listdir.js';
import { aborted, Code, dataLoss, failedPrecondition, invalidArgument, isAbsent, notFound, StatusError, unknown, withContext } from '../../errors.js';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, writeSync, constants as fsc } from 'node:fs';
import { containerDir, containersDir, nestedContainersDir, removedRuntimeDirs, runtimeFile, RUNTIME_FILES } from '../../paths.js';
import type { Quarantine } from '../../store/quarantine.js';
import { faultPoint } from '../../fault.js';
import { rm } from 'node:fs/promises';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { launchHelperPath, native, type NamespaceJoin, type SpawnedChild, type SpawnOptions } from '../../native/index.js';
import { pipeReader } from '../../native/run-program.js';
import { attachStreams, connectAttach } from './attach.js';
import { execFailure, failedExec, killSessionLeader, pipeExec, ttyExec } from './exec-streams.js';
import type { Logger } from '../../log.js';
import type { AttachHandle, Census, Containerizer, ContainerStatus, ExecHandle, ExecIO, ExecResult, LaunchRequest, LaunchResult, RecoveryReport, Termination } from '../containerizer.js';
import type { ProcessSpec } from '../../store/metadata.js';
import type { Provisioner, RootfsIdmap } from '../../provisioner/provisioner.js';
import { readCheckpoint, writeAtomic, writeCheckpoint, type Versioned } from '../../store/checkpoint.js';
import { nowNanos } from '../../util/time.js';
import {
  type ContainerConfig,
  type ContainerId,
  type Isolator,
  type LaunchInfo,
  type ResourceLimits,
  type ResourceStatistics,
  type UsageDetail,
  emptyLaunchInfo,
  hostIdOf,
  idString,
} from './isolator.js';
import { namespacePath } from './isolators/base.js';
import { readPodInterfaces } from '../../network/stats.js';

/** The isolator that reports CPU usage (usage() with detail 'cpu'). */
const CPU_ISOLATOR = 'cgroups/cpu';
import type { KnownContainer, Launcher } from './launcher/launcher.js';
import { encodePlan, type PlanOp } from './launcher/plan.js';
import { writePlan, type PodPool, type PooledHelper } from './launcher/pod-pool.js';
import { Steps } from '../../util/steps.js';

export type State = 'STARTING' | 'PROVISIONING' | 'PREPARING' | 'ISOLATING' | 'FETCHING' | 'RUNNING' | 'DESTROYING' | 'TERMINATED';

interface Container {
  id: ContainerId;
  key: string;
  config: ContainerConfig;
  state: State;
  pid?: number;
  pidfd?: number;
  /** Recovery could not tell whether it lives (an error other than ENOENT/ESRCH): left alone. */
  unverified?: string;
  /** resolves when the init (launch helper) has exited */
  exited?: Promise<void>;
  launching?: Promise<void>;
  destroying?: Promise<Termination>;
  termination?: Termination;
  /** Set by destroy as soon as the exit status is read, before isolator cleanup ends. */
  exitStatus?: Termination;
  /** Recovered as terminated: a crash may have cut its isolator cleanup short (cleanup is idempotent). */
  cleanupUnsure?: boolean;
  waiters: ((t: Termination) => void)[];
  children: Set<string>;
  /** process.hrtime.bigint() when it entered its state (launch-phase metrics); unset for recovered containers until they change state */
  since?: bigint;
  /** Its init (launch helper) has been reaped. */
  initExited?: boolean;
  /** destroy() was asked for (Stop, Remove, its pod's destroy), not only set off by its init's exit. */
  destroyRequested?: boolean;
  /**
   * Isolators whose prepare runs behind the caller's answer (Isolator.prepareBehindAnswer), until
   * it has run; `running` once it has begun.
   */
  deferred?: { isolators: Isolator[]; running?: Promise<void> };
  /** A launch waiting for its caller (LaunchRequest.prepared) goes on at once: a destroy began. */
  wakeLaunch?: () => void;
}

export interface MesosContainerizerOptions {
  isolators: Isolator[];
  launcher: Launcher;
  provisioner: Provisioner;
  log: Logger;
  launchTimeoutMs: number;
  /** Where the containers' runtime dirs (and so this containerizer's checkpoints) live. */
  runtimeDir: string;
  /** Pause helpers ready for pods (launcher/pod-pool.ts); none: every pod is cloned at its launch. */
  podPool?: PodPool;
  /** Unreadable checkpoints go here, and their containers are left alone. */
  quarantine: Quarantine;
  /**
   * Told how long a container spent in a launch phase (STARTING … FETCHING) when it moves on to
   * the next one, and in DESTROYING when it is TERMINATED (the metrics). A phase cut short by a
   * destroy is not reported.
   */
  onPhase?: (phase: State, kind: 'pod' | 'container', seconds: number) => void;
  /** What the delete of a removed runtime dir waits for (the daemon: a quiet moment between calls); default none. */
  deleteWhen?: () => Promise<void>;
}

const NS_FOR_EXEC: NamespaceJoin['type'][] = ['cgroup', 'ipc', 'uts', 'net', 'pid', 'mnt'];
const NS_FOR_EXEC_USERNS: NamespaceJoin['type'][] = ['user', ...NS_FOR_EXEC];

/** The runtime handlers the Mesos containerizer claims ('' is the default one). */
export const MESOS_HANDLERS = new Set(['', 'mesos', 'runc']);

export class MesosContainerizer implements Containerizer {
  private readonly containers_ = new Map<string, Container>();

  constructor(private readonly opts: MesosContainerizerOptions) {}

  // ---- launch -------------------------------------------------------------

  async launch(req: LaunchRequest): Promise<LaunchResult> {
    if (!MESOS_HANDLERS.has(req.runtimeHandler)) return 'NOT_SUPPORTED';
    const id = req.config.id;
    const key = idString(id);
    await this.check(req.config);
    // After the check's await, and with nothing awaited until the container is its child: a
    // destroy of the parent cannot come in between and miss it.
    let parent: Container | undefined;
    if (id.parent) {
      parent = this.containers_.get(idString(id.parent));
      if (!parent) throw notFound(`parent container ${id.parent.value} is unknown`);
      if (parent.state !== 'RUNNING') throw failedPrecondition(`parent container ${id.parent.value} is ${parent.state}, not RUNNING`);
    }
    if (this.containers_.has(key)) return 'ALREADY_LAUNCHED';
    // Our own copy: the caller's object is the caller's (the CRI layer keeps it in its records).
    const c: Container = { id, key, config: structuredClone(req.config), state: 'STARTING', waiters: [], children: new Set() };
    this.containers_.set(key, c);
    parent?.children.add(key);
    this.transition(c, 'STARTING');
    c.launching = this.runLaunch(c, req);
    try {
      await c.launching;
    } catch (err) {
      // ABORTED only when someone destroyed it: a launch whose helper died on its own failed.
      if (c.destroyRequested) throw aborted(`container ${id.value} was destroyed during its launch`);
      if (err instanceof StatusError && err.status === Code.ABORTED) throw unknown(`the launch helper of container ${id.value} exited during its launch`, err);
      throw err;
    }
    return 'SUCCESS';
  }

  private async runLaunch(c: Container, req: LaunchRequest): Promise<void> {
    const steps = new Steps();
    const rundir = c.config.runtimeDir;
    // The checkpoint comes before anything of the container exists (rootfs, cgroups, processes):
    // whatever a crash leaves, recovery finds it from here.
    mkdirSync(rundir, { recursive: true, mode: 0o700 });
    if (req.image) c.config.rootfs = this.opts.provisioner.rootfsPath(c.id.value);
    faultPoint('checkpoint-write:before');
    writeCheckpoint(runtimeFile(rundir, 'config'), c.config, VOLATILE);
    faultPoint('checkpoint-write:after');
    steps.mark('checkpoint');

    this.transition(c, 'PROVISIONING');
    if (req.image) await this.opts.provisioner.provision(c.id.value, req.image, idmapOf(c.config));
    this.checkAlive(c, 'provisioning');
    steps.mark('provision');

    this.transition(c, 'PREPARING');
    const info: LaunchInfo = emptyLaunchInfo();
    // fds isolators pass to the helper: ours to close whatever happens from here on.
    const passFds: number[] = [];
    const isolators = this.isolatorsFor(c);
    // A container whose caller is answered before the fork (req.prepared) gets its cgroups behind
    // that answer: they are the fork's, and their values were checked at launch().
    const behind = c.config.kind === 'container' && req.prepared ? isolators.filter((i) => i.prepareBehindAnswer) : [];
    if (behind.length > 0) c.deferred = { isolators: behind };
    try {
      faultPoint('cgroups-create:before');
      for (const isolator of isolators) {
        if (behind.includes(isolator)) continue;
        const part = await isolator.prepare(c.config);
        steps.mark(`prepare ${isolator.name}`);
        if (part?.passFds?.length) {
          const taken = passFds.length > 0;
          passFds.push(...part.passFds);
          // Each numbers its fds from FIRST_PASSED_FD in its plan ops.
          if (taken) throw new Error(`${isolator.name}: only one isolator may pass fds to the launch helper`);
        }
        this.checkAlive(c, `preparing (${isolator.name})`);
        if (!part) continue;
        info.cloneNamespaces.push(...(part.cloneNamespaces ?? []));
        info.enterNamespaces.push(...(part.enterNamespaces ?? []));
        info.setup.push(...(part.setup ?? []));
        if (part.cgroupV2Dir) info.cgroupV2Dir = part.cgroupV2Dir;
      }
      faultPoint('cgroups-create:after');
      await this.isolateAndSpawn(c, req, info, passFds, steps);
    } finally {
      for (const fd of passFds) native().close(fd);
    }
    this.opts.log.debug('launch steps', { container: c.key, ms: steps.fields() });
  }

  /**
   * A container's process and FIFOs, and its wait for the caller (still PREPARING); then
   * ISOLATING: the plan, the helper cloned and held while isolators place it, released; its answer.
   */
  private async isolateAndSpawn(c: Container, req: LaunchRequest, info: LaunchInfo, passFds: number[], steps: Steps): Promise<void> {
    const nested = c.config.kind === 'container';
    const rundir = c.config.runtimeDir;

    // The pause helper has no use for the runtime dir (it writes no status), and one in the pod's
    // user namespace could not open it (root only): it gets no rundir op, and its plan on fd 0.
    const plan: PlanOp[] = nested ? [['rundir', rundir, RUNTIME_FILES.execFifo, RUNTIME_FILES.ctlFifo, RUNTIME_FILES.status, RUNTIME_FILES.attachSock]] : [];
    const planOnStdin = !nested && c.config.userNamespace !== undefined;
    if (req.logPath) plan.push(['log', req.logPath]);
    plan.push(...info.setup);
    if (c.config.oomScoreAdj !== undefined) plan.push(['oom-score-adj', c.config.oomScoreAdj]);
    if (!nested && req.seccomp !== undefined) plan.push(['seccomp', native().seccompCompile(req.seccomp).toString('hex')]);
    if (!nested && req.podUser) {
      plan.push(['user', req.podUser.uid, req.podUser.gid]);
      if (req.podUser.groups.length > 0) plan.push(['groups', ...req.podUser.groups]);
    }
    if (nested) {
      if (!req.process) throw invalidArgument('a nested container needs a process to run');
      const p = await req.process(c.config.rootfs);
      steps.mark('process');
      plan.push(['cwd', p.cwd], ['user', p.uid, p.gid]);
      if (p.groups.length > 0) plan.push(['groups', ...p.groups]);
      for (const e of p.env) plan.push(['env', e]);
      if (p.capabilities !== undefined) plan.push(['capabilities', BigInt('0x' + p.capabilities)]);
      if (p.ambient !== undefined) plan.push(['ambient', BigInt('0x' + p.ambient)]);
      if (p.noNewPrivs) plan.push(['no-new-privs']);
      if (p.seccomp !== undefined) plan.push(['seccomp', native().seccompCompile(p.seccomp).toString('hex')]);
      if (p.apparmor !== undefined) plan.push(['apparmor', p.apparmor]);
      plan.push(['stdio', c.config.tty ? 1 : 0, c.config.stdin ? 1 : 0, c.config.stdinOnce ? 1 : 0]);
      plan.push(['argv', ...p.argv]);
      for (const fifo of [runtimeFile(rundir, 'execFifo'), runtimeFile(rundir, 'ctlFifo')]) {
        rmSync(fifo, { force: true });
        native().mkfifo(fifo, 0o600);
      }
      steps.mark('fifos');
      // Whatever a bad request can fail has been tried; the fork waits for the caller.
      if (req.prepared) {
        await this.untilDestroy(c, req.prepared());
        steps.mark('wait for the caller');
        this.checkAlive(c, 'preparing');
        if (c.deferred) await this.prepareBehindAnswer(c, c.deferred, info, steps);
      }
    }
    // Up to here PREPARING: a container's wait for its caller counts there, not as isolation.
    this.transition(c, 'ISOLATING');
    // A pod that joins no namespace and is passed no fd can take a pooled pause helper.
    const pooled =
      !nested && !planOnStdin && passFds.length === 0 && info.enterNamespaces.length === 0 ? this.opts.podPool?.take(info.cloneNamespaces) : undefined;
    if (pooled && (await this.handOver(c, pooled, info.cloneNamespaces.includes('cgroup'), plan, steps))) return;
    const planPath = runtimeFile(rundir, 'plan');
    // A plan read from fd 0 ends with `end` (a cut-short one must not run).
    writeAtomic(planPath, encodePlan(planOnStdin ? [...plan, ['end']] : plan), VOLATILE);
    steps.mark('plan');

    const [syncRead, syncWrite] = native().pipe();
    const diagFd = openSync(runtimeFile(rundir, 'launchLog'), fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o600);
    const sync = readSyncPipe(syncRead, this.opts.launchTimeoutMs);
    let cgroupFd = -1;
    let planFd = -1;
    try {
      if (info.cgroupV2Dir && this.opts.launcher.cloneIntoCgroup) cgroupFd = openSync(info.cgroupV2Dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
      if (planOnStdin) planFd = openSync(planPath, fsc.O_RDONLY);
      const spec: SpawnOptions = {
        file: launchHelperPath(),
        argv: ['cri-mesos-launch', nested ? 'container' : 'pause', planOnStdin ? '-' : planPath],
        env: [],
        cloneNamespaces: dedupe(info.cloneNamespaces),
        joinNamespaces: info.enterNamespaces,
        stdio: [planFd, -1, diagFd],
        extraFds: [syncWrite, ...passFds],
        ...(cgroupFd >= 0 ? { cgroupFd } : {}),
      };
      const child = await this.opts.launcher.fork(
        c.config,
        spec,
        async (heldPid) => {
          await Promise.all(this.isolatorsFor(c).map((i) => i.isolate(c.id, heldPid)));
        },
        steps,
      );
      c.pid = child.pid;
      c.pidfd = child.pidfd;
      writeAtomic(runtimeFile(rundir, 'pid'), `${child.pid}\n`, VOLATILE);
      writeAtomic(runtimeFile(rundir, 'pidStart'), `${processStartTime(child.pid) ?? ''}\n`, VOLATILE);
      this.watchExit(c);
      steps.mark('pid files');
    } finally {
      closeSync(diagFd);
      native().close(syncWrite);
      if (cgroupFd >= 0) closeSync(cgroupFd);
      if (planFd >= 0) closeSync(planFd);
    }
    await this.launched(c, sync, steps);
  }

  /** Until `p` settles, or a destroy of `c` begins: a destroy must not wait for what the caller waits for. */
  private async untilDestroy(c: Container, p: Promise<void>): Promise<void> {
    const destroyed = new Promise<void>((resolve) => (c.wakeLaunch = resolve));
    try {
      await Promise.race([p, destroyed]);
    } finally {
      c.wakeLaunch = undefined;
    }
  }

  /** The deferred isolators' prepare (their cgroups), once the caller has its answer. */
  private async prepareBehindAnswer(c: Container, deferred: NonNullable<Container['deferred']>, info: LaunchInfo, steps: Steps): Promise<void> {
    const run = async () => {
      for (const isolator of deferred.isolators) {
        // c.config as it is now: an update() before this began changed its resources.
        const part = await isolator.prepare(c.config);
        steps.mark(`prepare ${isolator.name}`);
        this.checkAlive(c, `preparing (${isolator.name})`);
        if (part?.setup?.length || part?.cloneNamespaces?.length || part?.enterNamespaces?.length || part?.passFds?.length) {
          throw new Error(`${isolator.name}: an isolator prepared behind the answer cannot add to the launch plan`);
        }
        if (part?.cgroupV2Dir) info.cgroupV2Dir = part.cgroupV2Dir;
      }
    };
    deferred.running = run();
    try {
      await deferred.running;
    } finally {
      if (c.deferred === deferred) c.deferred = undefined;
    }
  }

  /** The helper's answer on its sync pipe; FETCHING (a container, waiting for Start) or RUNNING (a pod). */
  private async launched(c: Container, sync: Promise<string>, steps: Steps): Promise<void> {
    const answer = await sync;
    steps.mark('helper setup');
    if (answer !== 'ok') {
      const diag = tail(runtimeFile(c.config.runtimeDir, 'launchLog'), `cri-mesos-launch: ${answer}`);
      // What the helper could not do (exec of a missing file, a mount refused...): UNKNOWN, as runc's failures are in containerd.
      throw unknown(`launch helper failed: ${answer}${diag ? ` (${diag})` : ''}`);
    }
    this.checkAlive(c, 'isolating');
    // Recovery tells a held container from a launch a crash cut short by this marker.
    if (c.config.kind === 'container') writeFileSync(runtimeFile(c.config.runtimeDir, 'held'), '');

    this.transition(c, 'FETCHING');
    if (c.config.kind !== 'container') this.transition(c, 'RUNNING');
  }

  /**
   * A pod's launch with a pooled pause helper (launcher/pod-pool.ts): moved into the pod's cgroups
   * as a held child would be, then given its plan; what follows is a launch's as usual. False when
   * the helper could not be moved (it died in the pool): it is killed and the pod is cloned instead.
   */
  private async handOver(c: Container, h: PooledHelper, cgroupNs: boolean, plan: PlanOp[], steps: Steps): Promise<boolean> {
    const pool = this.opts.podPool!;
    const rundir = c.config.runtimeDir;
    faultPoint('pool-handover:before');
    try {
      // Its fd 2 writes there from now on: the pod's launch log.
      renameSync(h.logPath, runtimeFile(rundir, 'launchLog'));
      await pool.adopt(c.config, h, async (pid) => {
        await Promise.all(this.isolatorsFor(c).map((i) => i.isolate(c.id, pid)));
      });
      steps.mark('pool handover');
    } catch (err) {
      pool.discard(h);
      this.opts.log.warn('a pooled pause helper could not be handed over; the pod is cloned instead', { container: c.key, pid: h.pid, error: String(err) });
      return false;
    }
    pool.handedOver(h);
    c.pid = h.pid;
    c.pidfd = h.pidfd;
    writeAtomic(runtimeFile(rundir, 'pid'), `${h.pid}\n`, VOLATILE);
    writeAtomic(runtimeFile(rundir, 'pidStart'), `${processStartTime(h.pid) ?? ''}\n`, VOLATILE);
    this.watchExit(c, h.exited);
    steps.mark('pid files');
    faultPoint('pool-handover:after');
    // Last: the helper runs its plan once it is in its cgroups and recorded.
    writePlan(h, encodePlan([...(cgroupNs ? [['cgroupns'] as PlanOp] : []), ...plan, ['end']]));
    steps.mark('plan');
    await this.launched(c, readSyncPipe(h.syncFd, this.opts.launchTimeoutMs), steps);
    return true;
  }

  async start(id: ContainerId): Promise<void> {
    const c = this.mustGet(id);
    if (c.state !== 'FETCHING') throw failedPrecondition(`container ${id.value} is ${c.state}, not CREATED`);
    // The intent first: a crash between the two leaves a marker that recovery completes by
    // writing the byte again (releaseStart), instead of a running container read as created.
    writeFileSync(runtimeFile(c.config.runtimeDir, 'started'), '');
    faultPoint('start-byte:before');
    if (!releaseStart(c.config.runtimeDir)) throw failedPrecondition(`container ${id.value} init is not waiting on its exec FIFO`);
    faultPoint('start-byte:after');
    this.transition(c, 'RUNNING');
  }

  // ---- exit, destroy --------------------------------------------------------

  /** `exited`: the wait on its pidfd when one runs already (a pooled helper's). */
  private watchExit(c: Container, exited: Promise<unknown> = native().waitPidfd(c.pidfd!)): void {
    c.exited = exited
      .then(
        () => undefined,
        (err: unknown) => {
          this.opts.log.warn('waiting for container init failed', { container: c.key, error: String(err) });
        },
      );
    void c.exited.then(() => {
      c.initExited = true;
      // (c.exited is set just above)
      // Mesos: the init being reaped triggers a destroy.
      if (c.state !== 'DESTROYING' && c.state !== 'TERMINATED') {
        this.opts.log.info('container init exited', { container: c.key, pid: c.pid });
        void this.destroyContainer(c).catch((err) => this.opts.log.error('destroy after exit failed', { container: c.key, error: String(err) }));
      }
    });
  }

  async destroy(id: ContainerId): Promise<Termination | undefined> {
    const c = this.containers_.get(idString(id));
    if (!c) return undefined;
    c.destroyRequested = true;
    return this.destroyContainer(c);
  }

  private destroyContainer(c: Container): Promise<Termination> {
    if (c.termination) return Promise.resolve(c.termination);
    if (!c.destroying) c.destroying = this.runDestroy(c);
    return c.destroying;
  }

  private async runDestroy(c: Container): Promise<Termination> {
    const steps = new Steps();
    const previous = c.state;
    this.transition(c, 'DESTROYING');
    c.wakeLaunch?.();
    await Promise.all([...c.children].map((k) => this.containers_.get(k)).filter((x): x is Container => !!x).map((child) => this.destroy(child.id)));
    // Nothing may be forked before provisioning/prepare settle; afterwards the launcher kills whatever exists.
    if (previous === 'STARTING' || previous === 'PROVISIONING' || previous === 'PREPARING') await settle(c.launching);
    steps.mark('children');
    faultPoint('destroy-kill:before');
    await this.opts.launcher.destroy(c.config);
    faultPoint('destroy-kill:after');
    steps.mark('kill');
    await settle(c.launching);
    if (c.exited) await c.exited;
    steps.mark('reap');
    let oomKilled = false;
    for (const isolator of this.isolatorsFor(c)) {
      try {
        if ((await isolator.status(c.id)).oomKilled) oomKilled = true;
      } catch {
        // status is best effort
      }
    }
    const termination = readTermination(c.config.runtimeDir, oomKilled);
    if (existsSync(c.config.runtimeDir)) writeCheckpoint(runtimeFile(c.config.runtimeDir, 'termination'), termination, VOLATILE);
    // How it ended is known now: waiters (the CRI layer) need not wait for the cleanup below.
    c.exitStatus = termination;
    for (const w of c.waiters.splice(0)) w(termination);
    steps.mark('termination');
    const errors: string[] = [];
    faultPoint('destroy-cleanup:before');
    for (const isolator of [...this.isolatorsFor(c)].reverse()) {
      try {
        await isolator.cleanup(c.id);
      } catch (err) {
        errors.push(`${isolator.name}: ${(err as Error).message}`);
      }
      steps.mark(`cleanup ${isolator.name}`);
    }
    faultPoint('destroy-cleanup:after');
    this.opts.log.debug('destroy steps', { container: c.key, ms: steps.fields() });
    if (c.pidfd !== undefined) {
      native().close(c.pidfd);
      c.pidfd = undefined;
    }
    c.termination = termination;
    this.phaseDone(c, 'DESTROYING');
    c.state = 'TERMINATED';
    this.opts.log.info('container state', { container: c.key, state: 'TERMINATED', exitCode: termination.exitCode, oomKilled });
    if (errors.length) this.opts.log.warn('isolator cleanup failed', { container: c.key, errors });
    return termination;
  }

  async wait(id: ContainerId): Promise<Termination | undefined> {
    const c = this.containers_.get(idString(id));
    if (!c) return undefined;
    if (c.termination ?? c.exitStatus) return c.termination ?? c.exitStatus;
    return new Promise((resolve) => c.waiters.push(resolve));
  }

  async kill(id: ContainerId, signal: number): Promise<boolean> {
    const c = this.containers_.get(idString(id));
    if (!c || c.state === 'TERMINATED') return false;
    if (c.pidfd === undefined) {
      await this.destroy(id);
      return true;
    }
    try {
      native().pidfdSendSignal(c.pidfd, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
    return true;
  }

  async remove(id: ContainerId): Promise<void> {
    const steps = new Steps();
    const key = idString(id);
    const c = this.containers_.get(key);
    // A destroy may still be cleaning up after it told its waiters the exit status.
    if (c?.destroying) await settle(c.destroying);
    steps.mark('destroy');
    if (c && c.state !== 'TERMINATED') throw failedPrecondition(`container ${id.value} has not terminated`);
    const config = c?.config;
    this.containers_.delete(key);
    if (id.parent) this.containers_.get(idString(id.parent))?.children.delete(key);
    // Unknown here (its checkpoint was quarantined): its rootfs may still exist, and is ours to remove.
    faultPoint('remove-rootfs:before');
    if (config?.kind === 'container' || (!config && id.parent)) await this.opts.provisioner.destroy(id.value);
    faultPoint('remove-rootfs:after');
    steps.mark('rootfs');
    if (config && c?.cleanupUnsure) for (const isolator of [...this.isolatorsFor({ config })].reverse()) await isolator.cleanup(id);
    // What isolators keep past cleanup (the pod's pinned network namespace), before its dir goes.
    if (config) for (const isolator of [...this.isolatorsFor({ config })].reverse()) await isolator.remove?.(config);
    steps.mark('isolators');
    if (config) this.removeRuntimeDir(id, config.runtimeDir);
    faultPoint('remove-rundir:after');
    steps.mark('runtime dir');
    this.opts.log.debug('remove steps', { container: key, ms: steps.fields() });
  }

  /**
   * A removed container's runtime dir is renamed into removed/ (gone for recovery and every reader
   * at once) and deleted in the background, once the calls pause: deleting its ~20 entries in the
   * call was 0.7-2 ms of RemoveContainer and RemovePodSandbox. A crash before the delete ends
   * leaves it there, and recovery deletes it.
   */
  private removeRuntimeDir(id: ContainerId, dir: string): void {
    const trashDir = removedRuntimeDirs(this.opts.runtimeDir);
    const trash = join(trashDir, id.value);
    faultPoint('remove-rundir:before');
    try {
      renameSync(dir, trash);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !existsSync(dir)) return;
      if (code === 'ENOENT') mkdirSync(trashDir, { recursive: true });
      // ENOTEMPTY/EEXIST: a dir of the same id a crash left in removed/ (ids are never reused).
      else if (code === 'ENOTEMPTY' || code === 'EEXIST') rmSync(trash, { recursive: true, force: true });
      else throw e;
      renameSync(dir, trash);
    }
    faultPoint('remove-rundir:renamed');
    this.deleteRemoved(trash);
  }

  private deleteRemoved(trash: string): void {
    (this.opts.deleteWhen?.() ?? Promise.resolve())
      .then(() => rm(trash, { recursive: true, force: true }))
      .catch((err: unknown) => this.opts.log.warn('cannot delete a removed runtime dir', { dir: trash, error: String(err) }));
  }

  // ---- running containers ----------------------------------------------------

  async update(id: ContainerId, resources: ResourceLimits): Promise<void> {
    const c = this.mustGet(id);
    // All or nothing: no isolator writes before every one has accepted the values.
    for (const isolator of this.isolatorsFor(c)) await isolator.check?.(resources);
    // Cgroups being made behind CreateContainer's answer (their prepare may have begun during the
    // checks): they are updated once they exist.
    if (c.deferred?.running) await settle(c.deferred.running);
    if (c.state === 'DESTROYING' || c.state === 'TERMINATED') throw failedPrecondition(`container ${id.value} is ${c.state}`);
    // Cgroups not made yet are made with c.config.resources: set before any await, so a prepare
    // that begins during the writes below makes them with these values.
    const previous = c.config.resources;
    c.config.resources = { ...previous, ...resources };
    const notYet = c.deferred && !c.deferred.running ? c.deferred.isolators : [];
    try {
      for (const isolator of this.isolatorsFor(c)) if (!notYet.includes(isolator)) await isolator.update(id, resources);
    } catch (err) {
      c.config.resources = previous;
      throw err;
    }
  }

  /** Mesos' status(): the container's addresses and network problems, from its isolators. */
  async status(id: ContainerId): Promise<ContainerStatus> {
    const c = this.mustGet(id);
    const out: ContainerStatus = { ips: [] };
    for (const isolator of this.isolatorsFor(c)) {
      if (!isolator.networkStatus) continue;
      const s = await isolator.networkStatus(id);
      if (s.ips?.length) out.ips.push(...s.ips);
      if (s.networkProblem) out.networkProblem = s.networkProblem;
    }
    return out;
  }

  /**
   * Mesos' usage(): what each isolator reports, plus, for a pod with a network namespace of its
   * own, its interfaces (read through the pause helper's /proc/<pid>/net/dev; no setns). A
   * container's process counts leave out its launch helper, which sits in its cgroups as the
   * command's parent: they are the container's own processes, as a user sees them. Detail 'cpu'
   * asks the cgroups/cpu isolator alone.
   */
  async usage(id: ContainerId, detail: UsageDetail = 'full'): Promise<ResourceStatistics> {
    const c = this.mustGet(id);
    // No cgroups yet (a container whose launch goes on behind CreateContainer's answer): no
    // usage, as containerd has none for a container without a task.
    if (c.deferred) throw failedPrecondition(`container ${id.value} has no cgroups yet: its launch is under way`);
    const stats: ResourceStatistics = { timestamp: Date.now() / 1000 };
    const isolators = this.isolatorsFor(c).filter((i) => detail === 'full' || i.name === CPU_ISOLATOR);
    const parts = await Promise.allSettled(isolators.map((i) => i.usage(id)));
    for (const p of parts) if (p.status === 'fulfilled') Object.assign(stats, p.value);
    if (detail === 'cpu') return stats;
    const alive = c.pid !== undefined && c.state !== 'TERMINATED';
    if (alive && c.config.kind === 'pod' && c.config.namespaces.network === 'POD') {
      const ifaces = readPodInterfaces(c.pid!);
      if (ifaces) stats.network = ifaces;
    }
    if (alive && c.config.kind === 'container') {
      if (stats.processes !== undefined) stats.processes = Math.max(0, stats.processes - 1);
      if (stats.threads !== undefined) stats.threads = Math.max(0, stats.threads - 1);
    }
    return stats;
  }

  async execSync(id: ContainerId, argv: string[], timeoutMs: number, proc: ProcessSpec): Promise<ExecResult> {
    const c = this.mustRun(id);
    const [outR, outW] = native().pipe();
    const [errR, errW] = native().pipe();
    const stdout = pipeReader(outR);
    const stderr = pipeReader(errR);
    let child;
    try {
      child = await this.spawnDebug(c, argv, proc, { stdio: [-1, outW, errW] });
    } finally {
      native().close(outW);
      native().close(errW);
    }
    let timedOut = false;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            // The whole group: children it forked must not outlive the timeout either.
            killSessionLeader(child);
          }, timeoutMs)
        : undefined;
    const exit = await native().waitPidfd(child.pidfd);
    if (timer) clearTimeout(timer);
    native().close(child.pidfd);
    // Output of a killed command's own children may keep the pipes open; do not wait forever.
    const [out, err] = await Promise.all([stdout.done(1000), stderr.done(1000)]);
    const exitCode = exit.signal !== null ? 128 + exit.signal : (exit.exitCode ?? -1);
    return { stdout: out, stderr: err, exitCode, timedOut };
  }

  /** The container, which must be running (exec, attach). */
  private mustRun(id: ContainerId): Container & { pid: number } {
    const c = this.mustGet(id);
    if (c.state !== 'RUNNING' || c.pid === undefined) throw failedPrecondition(`container ${id.value} is not running`);
    return c as Container & { pid: number };
  }

  /**
   * Spawns a process as a DEBUG nested container of `c` (Mesos §5.5): it joins all of the
   * container's namespaces, is placed in its cgroups (freezer included) while held, and runs
   * with the process spec's user, groups, capabilities and no_new_privs. The caller closes the
   * fds it passed in `io` once this settles.
   */
  private async spawnDebug(
    c: Container & { pid: number },
    argv: string[],
    proc: ProcessSpec,
    io: Pick<SpawnOptions, 'stdio' | 'ptySocket'>,
  ): Promise<SpawnedChild> {
    if (argv.length === 0 || !argv[0]) throw invalidArgument('the command to run is empty');
    // In a pod's user namespace the helper stays in the host's and only its init (the
    // container's PID 1 or the pod's) is in the container's namespaces: those are joined,
    // the user namespace first.
    const userns = c.config.userNamespace !== undefined;
    const pid = userns ? this.processPid(c.id) : c.pid;
    if (pid === undefined) throw failedPrecondition(`container ${c.id.value} is not running: its process has exited`);
    const spec: SpawnOptions = {
      file: argv[0],
      argv,
      env: proc.env,
      cloneNamespaces: [],
      joinNamespaces: (userns ? NS_FOR_EXEC_USERNS : NS_FOR_EXEC).map((type) => ({ type, path: namespacePath(pid, type) })),
      cwd: proc.cwd,
      uid: proc.uid,
      gid: proc.gid,
      groups: proc.groups,
      ...(proc.capabilities !== undefined ? { capabilities: proc.capabilities } : {}),
      ...(proc.ambient !== undefined ? { ambient: proc.ambient } : {}),
      noNewPrivs: proc.noNewPrivs ?? false,
      ...(proc.seccomp !== undefined ? { seccomp: proc.seccomp } : {}),
      ...(proc.apparmor !== undefined ? { apparmor: proc.apparmor } : {}),
      searchPath: proc.env.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH,
      ...io,
    };
    let held;
    try {
      held = await native().spawnHeld(spec);
    } catch (err) {
      // The namespace files vanish when the container's init has exited (or is a zombie).
      if (isAbsent(err) && (err as NodeJS.ErrnoException).path?.startsWith(`/proc/${pid}/`)) {
        throw failedPrecondition(`container ${c.id.value} is not running: its process has exited`, err);
      }
      throw err;
    }
    try {
      await this.opts.launcher.place(c.config, held.pid);
      await Promise.all(this.isolatorsFor(c).map((i) => i.isolate(c.id, held.pid)));
    } catch (err) {
      native().abort(held);
      throw err;
    }
    return native().release(held);
  }

  /**
   * CRI Exec: `argv` as a DEBUG nested container of a running container (as execSync), with
   * streamed stdio. With a tty, the process runs on a terminal from the container's own devpts
   * (opened by the spawned child after it joined the container's mount namespace); we hold the
   * master. A command that cannot be executed is not an error here: as with runc, the handle
   * reports 127 (not found) or 126 (not executable) with the reason on stderr (a tty's stdout).
   */
  async exec(id: ContainerId, argv: string[], proc: ProcessSpec, io: ExecIO): Promise<ExecHandle> {
    const c = this.mustRun(id);
    if (io.tty && io.stderr) throw invalidArgument('tty and stderr cannot both be true');
    if (!io.stdin && !io.stdout && !io.stderr) throw invalidArgument('one of stdin, stdout and stderr must be true');
    const theirs: number[] = [];
    const ours: number[] = [];
    const pair = () => {
      const [r, w] = native().pipe();
      return [r, w] as const;
    };
    try {
      let stdio: [number, number, number] = [-1, -1, -1];
      let ptySocket: number | undefined;
      let inW = -1;
      let outR = -1;
      let errR = -1;
      if (io.tty) {
        const [mine, child] = native().socketPair();
        ours.push(mine);
        theirs.push(child);
        ptySocket = child;
      } else {
        if (io.stdin) {
          const [r, w] = pair();
          theirs.push(r);
          ours.push(w);
          [stdio[0], inW] = [r, w];
        }
        if (io.stdout) {
          const [r, w] = pair();
          ours.push(r);
          theirs.push(w);
          [outR, stdio[1]] = [r, w];
        }
        if (io.stderr) {
          const [r, w] = pair();
          ours.push(r);
          theirs.push(w);
          [errR, stdio[2]] = [r, w];
        }
      }
      let child: SpawnedChild;
      try {
        child = await this.spawnDebug(c, argv, proc, { stdio, ...(ptySocket !== undefined ? { ptySocket } : {}) });
      } catch (err) {
        const failed = execFailure(err, argv[0]!);
        if (!failed) throw err;
        return failedExec(io, failed.code, failed.message);
      } finally {
        for (const fd of theirs.splice(0)) native().close(fd);
      }
      if (ptySocket !== undefined) {
        const master = native().recvFd(ours[0]!);
        native().close(ours.splice(0)[0]!);
        return ttyExec(child, master, io);
      }
      ours.length = 0; // handed to the streams below
      return pipeExec(child, inW, outR, errR);
    } finally {
      for (const fd of [...theirs, ...ours]) native().close(fd);
    }
  }

  /** CRI Attach: the container's own stdio, served by its launch helper (see attach.ts). */
  async attach(id: ContainerId): Promise<AttachHandle> {
    const c = this.mustGet(id);
    if (c.config.kind !== 'container') throw invalidArgument(`${id.value} is a pod sandbox; attach needs a container`);
    if (c.state !== 'RUNNING') throw failedPrecondition(`container ${id.value} is not running`);
    const sock = await connectAttach(c.config.runtimeDir, RUNTIME_FILES.attachSock);
    return attachStreams(sock, { stdin: c.config.stdin === true, tty: c.config.tty === true });
  }

  /**
   * CRI PortForward: a TCP connection to localhost:port inside the pod's network namespace
   * (127.0.0.1, then [::1]). A port nobody listens on is UNAVAILABLE with the ECONNREFUSED
   * error as its cause.
   */
  async portForward(podId: ContainerId, port: number): Promise<Socket> {
    const c = this.mustGet(podId);
    if (c.config.kind !== 'pod') throw invalidArgument(`${podId.value} is not a pod sandbox`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalidArgument(`port ${port} is not a TCP port (1-65535)`);
    if (c.state !== 'RUNNING' || c.pid === undefined) throw failedPrecondition(`pod sandbox ${podId.value} is not running`);
    const nsPath = namespacePath(c.pid, 'net');
    let fd: number;
    try {
      fd = await native().connectInNetns(nsPath, port);
    } catch (err) {
      if (isAbsent(err) && (err as NodeJS.ErrnoException).syscall === 'open') {
        throw failedPrecondition(`pod sandbox ${podId.value} is not running: its network namespace is gone`, err);
      }
      throw withContext(err, `port-forward to port ${port} in pod sandbox ${podId.value}`);
    }
    return new Socket({ fd, readable: true, writable: true });
  }

  async control(id: ContainerId, line: string): Promise<void> {
    const c = this.mustGet(id);
    if (c.state !== 'RUNNING') throw failedPrecondition(`container ${id.value} is not running`);
    const fd = openSync(runtimeFile(c.config.runtimeDir, 'ctlFifo'), fsc.O_WRONLY | fsc.O_NONBLOCK);
    try {
      writeSync(fd, line.endsWith('\n') ? line : line + '\n');
    } finally {
      closeSync(fd);
    }
  }

  containers(): ContainerId[] {
    return [...this.containers_.values()].map((c) => c.id);
  }

  pid(id: ContainerId): number | undefined {
    return this.containers_.get(idString(id))?.pid;
  }

  processPid(id: ContainerId): number | undefined {
    const c = this.containers_.get(idString(id));
    if (!c || c.pid === undefined || c.state === 'TERMINATED') return undefined;
    if (c.config.kind === 'pod') return c.pid;
    // The helper's only child is the container's init. The helper may sit in a PID namespace
    // (pid POD) where it cannot name the host's pid, so ask the host's /proc.
    return childPids(c.pid)[0];
  }

  isRunning(id: ContainerId): boolean {
    return this.containers_.get(idString(id))?.state === 'RUNNING';
  }

  // ---- recovery --------------------------------------------------------------

  /**
   * Mesos' recover(): read our own checkpoints (config.json of every runtime dir), match each
   * with its live init, finish what a crash interrupted, destroy what died, kill orphans.
   * Fails safe: only ENOENT means absent and only ESRCH means exited; an unreadable checkpoint
   * is quarantined and its container left alone; one bad container never stops the others.
   */
  async recover(): Promise<RecoveryReport> {
    // Runtime dirs of removed containers whose background delete a crash cut short.
    const removed = removedRuntimeDirs(this.opts.runtimeDir);
    for (const name of listDir(removed)) this.deleteRemoved(join(removed, name));
    const found = this.readCheckpoints();
    const configs = found.containers;
    for (const isolator of this.opts.isolators) {
      await isolator.recover(configs.filter((config) => this.isolatorsFor({ config }).includes(isolator)));
    }
    // Containers whose checkpoint is quarantined are known too: their cgroups are not orphans.
    const orphans = await this.opts.launcher.recover([...configs, ...found.protected], (config) => livePid(config.runtimeDir));
    if (orphans.length) this.opts.log.warn('killed orphan containers (cgroups no checkpoint knows)', { orphans });
    const dead: Container[] = [];
    const interrupted = new Set<Container>();
    // Roots first, so children can be linked to them.
    const ordered = [...configs].sort((a, b) => Number(!!a.id.parent) - Number(!!b.id.parent));
    for (const config of ordered) {
      const key = idString(config.id);
      const c: Container = { id: config.id, key, config, state: 'RUNNING', waiters: [], children: new Set() };
      if (config.id.parent) this.containers_.get(idString(config.id.parent))?.children.add(key);
      this.containers_.set(key, c);
      try {
        const started = existsSync(runtimeFile(config.runtimeDir, 'started'));
        // Created, but its helper never answered (CreateContainer answers before the fork): what
        // the launch made is destroyed (or was, before a second crash), and the CRI layer
        // launches it again.
        if (config.kind === 'container' && !started && !existsSync(runtimeFile(config.runtimeDir, 'held'))) interrupted.add(c);
        const termination = this.readTerminationCheckpoint(config.runtimeDir);
        if (termination) {
          c.termination = termination;
          c.state = 'TERMINATED';
          // Destroyed before the restart, but its cleanup may have been cut short: remove redoes it.
          c.cleanupUnsure = true;
          continue;
        }
        if (interrupted.has(c)) {
          dead.push(c);
          continue;
        }
        const alive = attach(config.runtimeDir);
        // Gone, or a crash during launch before the helper's pid was recorded (the launcher
        // killed whatever was in its cgroups): destroy reads the status and cleans up.
        if (typeof alive === 'string') {
          dead.push(c);
          continue;
        }
        c.pid = alive.pid;
        c.pidfd = alive.pidfd;
        c.state = 'RUNNING';
        if (config.kind === 'container' && !started) c.state = 'FETCHING';
        else if (config.kind === 'container') releaseStart(config.runtimeDir); // a start the crash cut short
        this.watchExit(c);
        this.opts.log.debug('recovered container', { container: key, pid: c.pid, state: c.state });
      } catch (err) {
        // Not "absent", not "exited": we cannot tell, so leave it running and untouched.
        c.unverified = String(err);
        this.opts.log.error('cannot tell whether a container lives; left alone', { container: key, error: String(err) });
      }
    }
    // Containers whose init died while we were down: destroy reads their status file. In the
    // background, a few at a time, so the first RPC does not wait for them.
    const cleanup = runBounded(dead, 8, async (c) => {
      if (interrupted.has(c)) this.opts.log.info('container launch cut short by the restart; destroying what it made', { container: c.key });
      else this.opts.log.info('container exited while the daemon was down', { container: c.key });
      await this.destroy(c.id);
    });
    return {
      // A dead container still queued for its destroy is reported as what it is: DESTROYING (the
      // CRI layer waits for its exit status, which destroy reads, before opening its gate).
      containers: [...this.containers_.values()].map((c) => ({
        id: c.id,
        config: c.config,
        state: dead.includes(c) && c.state !== 'TERMINATED' ? 'DESTROYING' : c.state,
        unverified: c.unverified !== undefined,
        ...(interrupted.has(c) ? { interrupted: true } : {}),
      })),
      protected: found.protected.map((c) => c.id),
      orphans,
      cleanup,
    };
  }

  /** config.json of every runtime dir; a missing one under a dir is a launch that never began. */
  private readCheckpoints(): { containers: ContainerConfig[]; protected: KnownContainer[] } {
    const containers: ContainerConfig[] = [];
    const protectedIds: KnownContainer[] = [];
    const visit = (dir: string, id: ContainerId) => {
      const file = runtimeFile(dir, 'config');
      try {
        const { version: _v, ...config } = readCheckpoint<ContainerConfig & Versioned>(file);
        if (!this.claims(config)) return;
        containers.push(config);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          // The checkpoint is written before anything else of a container: none means none.
          if (!existsSync(nestedContainersDir(dir))) rmSync(dir, { recursive: true, force: true });
          return;
        }
        this.opts.quarantine.add(file, err, `runtime-${idString(id)}`);
        protectedIds.push({ id, runtimeDir: dir, kind: id.parent ? 'container' : 'pod' });
        return;
      }
      for (const child of listDir(nestedContainersDir(dir))) visit(join(nestedContainersDir(dir), child), { value: child, parent: id });
    };
    for (const pod of listDir(containersDir(this.opts.runtimeDir))) visit(containerDir(this.opts.runtimeDir, { value: pod }), { value: pod });
    return { containers, protected: protectedIds };
  }

  /** The termination checkpoint; an unreadable one is quarantined and rebuilt from the status file. */
  private readTerminationCheckpoint(runtimeDir: string): Termination | undefined {
    const file = runtimeFile(runtimeDir, 'termination');
    try {
      const { version: _v, ...t } = readCheckpoint<Termination & Versioned>(file);
      return t;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      this.opts.quarantine.add(file, err, 'termination');
      return readTermination(runtimeDir, false);
    }
  }

  private claims(config: ContainerConfig): boolean {
    return MESOS_HANDLERS.has(config.runtimeHandler ?? '');
  }

  // ---- helpers ---------------------------------------------------------------

  /** Every isolator accepts the resources (ResourceError otherwise), before anything is created. */
  private async check(config: ContainerConfig): Promise<void> {
    for (const isolator of this.isolatorsFor({ config })) await isolator.check?.(config.resources);
  }

  private isolatorsFor(c: { config: Pick<ContainerConfig, 'kind'> }): Isolator[] {
    return c.config.kind === 'container' ? this.opts.isolators.filter((i) => i.supportsNesting) : this.opts.isolators;
  }

  private mustGet(id: ContainerId): Container {
    const c = this.containers_.get(idString(id));
    if (!c) throw notFound(`container ${id.value} is unknown`);
    return c;
  }

  private checkAlive(c: Container, during: string): void {
    if (c.state === 'DESTROYING' || c.state === 'TERMINATED') throw aborted(`container destroyed during ${during}`);
  }

  private transition(c: Container, state: State): void {
    if (c.state === 'DESTROYING' && state !== 'DESTROYING') {
      throw aborted(`container ${c.key} destroyed during ${c.state.toLowerCase()}`);
    }
    if (c.state !== state && state !== 'DESTROYING' && c.state !== 'RUNNING') this.phaseDone(c, c.state);
    c.state = state;
    c.since = this.opts.onPhase ? process.hrtime.bigint() : undefined;
    this.opts.log.info('container state', { container: c.key, state });
  }

  /** Report the time `c` spent in `phase`, which it leaves now. */
  private phaseDone(c: Container, phase: State): void {
    if (!this.opts.onPhase || c.since === undefined) return;
    this.opts.onPhase(phase, c.config.kind === 'container' ? 'container' : 'pod', Number(process.hrtime.bigint() - c.since) / 1e9);
  }

  /** Containers by kind and state, and launch helpers alive (read at every metrics scrape). */
  census(): Census {
    const states = new Map<string, { kind: 'pod' | 'container'; state: string; count: number }>();
    const helpers = { pod: 0, container: 0 };
    for (const c of this.containers_.values()) {
      const kind = c.config.kind === 'container' ? 'container' : 'pod';
      const key = `${kind}/${c.state}`;
      const s = states.get(key);
      if (s) s.count++;
      else states.set(key, { kind, state: c.state, count: 1 });
      if (c.pid !== undefined && !c.initExited && c.state !== 'TERMINATED') helpers[kind]++;
    }
    return {
      states: [...states.values()],
      helpers: [
        { kind: 'pod', count: helpers.pod },
        { kind: 'container', count: helpers.container },
      ],
    };
  }
}

/**
 * What the provisioner needs to idmap the rootfs of a container in its pod's user namespace:
 * the namespace (the pod's helper's) and the host ids of its root, which own the upper dir.
 */
function idmapOf(config: ContainerConfig): RootfsIdmap | undefined {
  const u = config.userNamespace;
  if (!u || config.kind !== 'container') return undefined;
  if (config.parentPid === undefined) throw failedPrecondition(`container ${config.id.value}: the pod's init pid is unknown`);
  const uid = hostIdOf(u.uids, 0);
  const gid = hostIdOf(u.gids, 0);
  if (uid === undefined || gid === undefined) throw invalidArgument(`container ${config.id.value}: the user namespace does not map uid and gid 0`);
  return { userns: namespacePath(config.parentPid, 'user'), rootUid: uid, rootGid: gid };
}

/** Runtime-dir files: tmpfs, so atomic rename without fsync. */
const VOLATILE = { durable: false };

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function dedupe<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

async function settle(p: Promise<unknown> | undefined): Promise<void> {
  if (p) await p.then(
    () => undefined,
    () => undefined,
  );
}

/** The helper's recorded pid; undefined when none was recorded (only ENOENT means that). */
export function readPidFile(runtimeDir: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(runtimeFile(runtimeDir, 'pid'), 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const pid = Number(text);
  if (!Number.isInteger(pid) || pid <= 0) throw dataLoss(`${runtimeFile(runtimeDir, 'pid')}: not a pid: ${JSON.stringify(text)}`);
  return pid;
}

/**
 * Reattach to a container's launch helper: the pidfd is opened first, so the process cannot be
 * replaced while we check it is ours (same start time, not a zombie); then its liveness is asked
 * through the pidfd. "gone" only on ESRCH/ENOENT or a start time that is not ours; any other
 * error is thrown (the caller leaves the container alone).
 */
export function attach(runtimeDir: string): 'never launched' | 'gone' | { pid: number; pidfd: number } {
  const pid = readPidFile(runtimeDir);
  if (pid === undefined) return 'never launched';
  let recorded = '';
  try {
    recorded = readFileSync(runtimeFile(runtimeDir, 'pidStart'), 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  let pidfd: number;
  try {
    pidfd = native().pidfdOpen(pid);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return 'gone';
    throw err;
  }
  try {
    const stat = readStat(pid);
    // Written right after the pid: a crash in between leaves no start time; the command line tells.
    const ours = recorded ? stat?.[19] === recorded : readCmdline(pid)?.startsWith('cri-mesos-launch\0') === true;
    if (!stat || !ours || stat[0] === 'Z' || stat[0] === 'X') {
      native().close(pidfd);
      return 'gone';
    }
    native().pidfdSendSignal(pidfd, 0);
    return { pid, pidfd };
  } catch (err) {
    native().close(pidfd);
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return 'gone';
    throw err;
  }
}

/** Fields of /proc/<pid>/stat after the command; undefined when the process is gone (ENOENT/ESRCH). */
function readStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return undefined;
    throw err;
  }
}

function readCmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return undefined;
  }
}

/** The helper's pid if that very process still runs; undefined otherwise, also when that cannot be told. */
function livePid(runtimeDir: string): number | undefined {
  try {
    const r = attach(runtimeDir);
    if (typeof r === 'string') return undefined;
    native().close(r.pidfd);
    return r.pid;
  } catch {
    return undefined;
  }
}

/** Write the start byte if the helper still waits for it; false when nobody reads the FIFO. */
export function releaseStart(runtimeDir: string): boolean {
  let fd: number;
  try {
    fd = openSync(runtimeFile(runtimeDir, 'execFifo'), fsc.O_WRONLY | fsc.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENXIO' || code === 'ENOENT') return false;
    throw err;
  }
  try {
    writeSync(fd, Buffer.from([0]));
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Run `fn` over `items`, at most `limit` at a time; never rejects (fn logs its own errors). */
async function runBounded<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item).catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** readStat, with any error read as "no such process" (for reporting, never for destroying). */
function statFields(pid: number): string[] | undefined {
  try {
    return readStat(pid);
  } catch {
    return undefined;
  }
}

/** Children of `pid`, as this process's PID namespace numbers them. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync(`/proc/${pid}`)) return [];
  }
  // Kernels without CONFIG_PROC_CHILDREN: scan for the parent pid.
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (statFields(Number(name))?.[1] === String(pid)) out.push(Number(name));
  }
  return out;
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot). */
export function processStartTime(pid: number): string | undefined {
  return statFields(pid)?.[19];
}

/** The helper writes "<wait status> <unix nanos>"; no file means the init was SIGKILLed. */
export function readTermination(runtimeDir: string, oomKilled: boolean): Termination {
  let text = '';
  try {
    text = readFileSync(runtimeFile(runtimeDir, 'status'), 'utf8').trim();
  } catch {
    // missing: killed before it could write
  }
  const [statusText, nanos] = text.split(/\s+/);
  const now = nowNanos();
  // The init was SIGKILLed with the rest of the container (destroy), so it could not record a status.
  if (!statusText) return { exitCode: 137, finishedAt: now, oomKilled, message: '' };
  const status = Number(statusText);
  const signal = status & 0x7f;
  const exitCode = signal === 0 ? (status >> 8) & 0xff : 128 + signal;
  return { exitCode, finishedAt: nanos && /^\d+$/.test(nanos) ? nanos : now, oomKilled, message: '' };
}

/** The last lines of a launch log, each once, without `said` (the helper and its init both log their error). */
function tail(path: string, said: string): string {
  try {
    return [...new Set(readFileSync(path, 'utf8').trim().split('\n').slice(-3))].filter((l) => l !== said).join('; ');
  } catch {
    return '';
  }
}

/** Read the helper's one-line answer on its sync pipe ("ok" or "error …"). */
function readSyncPipe(fd: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const sock = new Socket({ fd, readable: true, writable: false });
    let buf = '';
    const finish = (answer: string) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => finish(`no answer within ${timeoutMs} ms`), timeoutMs);
    sock.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        const line = buf.slice(0, nl);
        finish(line === 'ok' ? 'ok' : line.replace(/^error\s*/, ''));
      }
    });
    sock.on('end', () => finish(buf.length ? buf.replace(/^error\s*/, '') : 'helper exited before it was ready'));
    sock.on('error', (err) => finish(`sync pipe: ${err.message}`));
  });
}

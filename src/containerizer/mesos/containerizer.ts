// MesosContainerizer (src/slave/containerizer/mesos/containerizer.cpp):
// STARTING → PROVISIONING → PREPARING → ISOLATING → FETCHING → RUNNING → DESTROYING.
// CRI's Create/Start split sits at FETCHING: the launch helper has set the
// container up and waits on its exec FIFO until start() writes the byte.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync, constants as fsc } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { launchHelperPath, native, type NamespaceJoin, type SpawnOptions } from '../../native/index.js';
import type { Logger } from '../../log.js';
import type { Containerizer, ExecResult, LaunchRequest, LaunchResult, Termination } from '../containerizer.js';
import type { ProcessSpec } from '../../store/metadata.js';
import type { Provisioner } from '../../provisioner/provisioner.js';
import { writeAtomic, writeCheckpoint } from '../../store/checkpoint.js';
import { nowNanos } from '../../util/time.js';
import {
  type ContainerConfig,
  type ContainerId,
  type Isolator,
  type LaunchInfo,
  type ResourceLimits,
  type ResourceStatistics,
  emptyLaunchInfo,
  idString,
} from './isolator.js';
import { namespacePath } from './isolators/base.js';
import type { Launcher } from './launcher/launcher.js';
import { encodePlan, type PlanOp } from './launcher/plan.js';

export type State = 'STARTING' | 'PROVISIONING' | 'PREPARING' | 'ISOLATING' | 'FETCHING' | 'RUNNING' | 'DESTROYING' | 'TERMINATED';

interface Container {
  id: ContainerId;
  key: string;
  config: ContainerConfig;
  state: State;
  pid?: number;
  pidfd?: number;
  /** resolves when the init (launch helper) has exited */
  exited?: Promise<void>;
  launching?: Promise<void>;
  destroying?: Promise<Termination>;
  termination?: Termination;
  waiters: ((t: Termination) => void)[];
  children: Set<string>;
}

export interface MesosContainerizerOptions {
  isolators: Isolator[];
  launcher: Launcher;
  provisioner: Provisioner;
  log: Logger;
  launchTimeoutMs: number;
}

const NS_FOR_EXEC: NamespaceJoin['type'][] = ['cgroup', 'ipc', 'uts', 'net', 'pid', 'mnt'];

export class MesosContainerizer implements Containerizer {
  private readonly containers_ = new Map<string, Container>();

  constructor(private readonly opts: MesosContainerizerOptions) {}

  // ---- launch -------------------------------------------------------------

  async launch(req: LaunchRequest): Promise<LaunchResult> {
    if (req.runtimeHandler !== '' && req.runtimeHandler !== 'mesos') return 'NOT_SUPPORTED';
    const id = req.config.id;
    const key = idString(id);
    if (this.containers_.has(key)) return 'ALREADY_LAUNCHED';
    let parent: Container | undefined;
    if (id.parent) {
      parent = this.containers_.get(idString(id.parent));
      if (!parent) throw new Error(`parent container ${id.parent.value} is unknown`);
      if (parent.state !== 'RUNNING') throw new Error(`parent container ${id.parent.value} is ${parent.state}, not RUNNING`);
    }
    await this.check(req.config);
    const c: Container = { id, key, config: req.config, state: 'STARTING', waiters: [], children: new Set() };
    this.containers_.set(key, c);
    parent?.children.add(key);
    this.transition(c, 'STARTING');
    c.launching = this.runLaunch(c, req);
    await c.launching;
    return 'SUCCESS';
  }

  private async runLaunch(c: Container, req: LaunchRequest): Promise<void> {
    const nested = c.config.kind === 'container';
    mkdirSync(c.config.runtimeDir, { recursive: true, mode: 0o700 });

    this.transition(c, 'PROVISIONING');
    if (req.image) {
      const { rootfs } = await this.opts.provisioner.provision(c.id.value, req.image);
      c.config.rootfs = rootfs;
    }
    this.checkAlive(c, 'provisioning');

    this.transition(c, 'PREPARING');
    writeCheckpoint(join(c.config.runtimeDir, 'config.json'), c.config, VOLATILE);
    const info: LaunchInfo = emptyLaunchInfo();
    for (const isolator of this.isolatorsFor(c)) {
      const part = await isolator.prepare(c.config);
      this.checkAlive(c, `preparing (${isolator.name})`);
      if (!part) continue;
      info.cloneNamespaces.push(...(part.cloneNamespaces ?? []));
      info.enterNamespaces.push(...(part.enterNamespaces ?? []));
      info.setup.push(...(part.setup ?? []));
      if (part.cgroupV2Dir) info.cgroupV2Dir = part.cgroupV2Dir;
    }

    this.transition(c, 'ISOLATING');
    const rundir = c.config.runtimeDir;
    const plan: PlanOp[] = [['rundir', rundir]];
    if (req.logPath) plan.push(['log', req.logPath]);
    plan.push(...info.setup);
    if (c.config.oomScoreAdj !== undefined) plan.push(['oom-score-adj', c.config.oomScoreAdj]);
    if (nested) {
      if (!req.process) throw new Error('a nested container needs a process to run');
      const p = await req.process(c.config.rootfs);
      plan.push(['cwd', p.cwd], ['user', p.uid, p.gid]);
      if (p.groups.length > 0) plan.push(['groups', ...p.groups]);
      for (const e of p.env) plan.push(['env', e]);
      if (p.capabilities !== undefined) plan.push(['capabilities', BigInt('0x' + p.capabilities)]);
      if (p.noNewPrivs) plan.push(['no-new-privs']);
      plan.push(['argv', ...p.argv]);
      for (const fifo of ['exec.fifo', 'ctl.fifo']) {
        rmSync(join(rundir, fifo), { force: true });
        native().mkfifo(join(rundir, fifo), 0o600);
      }
    }
    const planPath = join(rundir, 'plan');
    writeAtomic(planPath, encodePlan(plan), VOLATILE);

    const [syncRead, syncWrite] = native().pipe();
    const diagFd = openSync(join(rundir, 'launch.log'), fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o600);
    const sync = readSyncPipe(syncRead, this.opts.launchTimeoutMs);
    let cgroupFd = -1;
    try {
      if (info.cgroupV2Dir && this.opts.launcher.cloneIntoCgroup) cgroupFd = openSync(info.cgroupV2Dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
      const spec: SpawnOptions = {
        file: launchHelperPath(),
        argv: ['cri-mesos-launch', nested ? 'container' : 'pause', planPath],
        env: [],
        cloneNamespaces: dedupe(info.cloneNamespaces),
        joinNamespaces: info.enterNamespaces,
        stdio: [-1, -1, diagFd],
        extraFds: [syncWrite],
        ...(cgroupFd >= 0 ? { cgroupFd } : {}),
      };
      const child = await this.opts.launcher.fork(c.config, spec, async (heldPid) => {
        await Promise.all(this.isolatorsFor(c).map((i) => i.isolate(c.id, heldPid)));
      });
      c.pid = child.pid;
      c.pidfd = child.pidfd;
      writeAtomic(join(rundir, 'pid'), `${child.pid}\n`, VOLATILE);
      writeAtomic(join(rundir, 'pid.start'), `${processStartTime(child.pid) ?? ''}\n`, VOLATILE);
      this.watchExit(c);
    } finally {
      closeSync(diagFd);
      native().close(syncWrite);
      if (cgroupFd >= 0) closeSync(cgroupFd);
    }
    const answer = await sync;
    if (answer !== 'ok') {
      const diag = tail(join(rundir, 'launch.log'));
      throw new Error(`launch helper failed: ${answer}${diag ? ` (${diag})` : ''}`);
    }
    this.checkAlive(c, 'isolating');

    this.transition(c, 'FETCHING');
    if (!nested) this.transition(c, 'RUNNING');
  }

  async start(id: ContainerId): Promise<void> {
    const c = this.mustGet(id);
    if (c.state !== 'FETCHING') throw new Error(`container ${id.value} is ${c.state}, not CREATED`);
    let fd: number;
    try {
      fd = openSync(join(c.config.runtimeDir, 'exec.fifo'), fsc.O_WRONLY | fsc.O_NONBLOCK);
    } catch (err) {
      throw new Error(`container ${id.value} init is not waiting on its exec FIFO: ${(err as Error).message}`);
    }
    try {
      writeSync(fd, Buffer.from([0]));
    } finally {
      closeSync(fd);
    }
    writeFileSync(join(c.config.runtimeDir, 'started'), '');
    this.transition(c, 'RUNNING');
  }

  // ---- exit, destroy --------------------------------------------------------

  private watchExit(c: Container): void {
    const pidfd = c.pidfd!;
    c.exited = native()
      .waitPidfd(pidfd)
      .then(
        () => undefined,
        (err: unknown) => {
          this.opts.log.warn('waiting for container init failed', { container: c.key, error: String(err) });
        },
      );
    void c.exited.then(() => {
      // (c.exited is set just above)
      // Mesos: the init being reaped triggers a destroy.
      if (c.state !== 'DESTROYING' && c.state !== 'TERMINATED') {
        this.opts.log.info('container init exited', { container: c.key, pid: c.pid });
        void this.destroy(c.id).catch((err) => this.opts.log.error('destroy after exit failed', { container: c.key, error: String(err) }));
      }
    });
  }

  async destroy(id: ContainerId): Promise<Termination | undefined> {
    const c = this.containers_.get(idString(id));
    if (!c) return undefined;
    if (c.termination) return c.termination;
    if (!c.destroying) c.destroying = this.runDestroy(c);
    return c.destroying;
  }

  private async runDestroy(c: Container): Promise<Termination> {
    const previous = c.state;
    this.transition(c, 'DESTROYING');
    await Promise.all([...c.children].map((k) => this.containers_.get(k)).filter((x): x is Container => !!x).map((child) => this.destroy(child.id)));
    // Nothing may be forked before provisioning/prepare settle; afterwards the launcher kills whatever exists.
    if (previous === 'STARTING' || previous === 'PROVISIONING' || previous === 'PREPARING') await settle(c.launching);
    await this.opts.launcher.destroy(c.config);
    await settle(c.launching);
    if (c.exited) await c.exited;
    let oomKilled = false;
    for (const isolator of this.isolatorsFor(c)) {
      try {
        if ((await isolator.status(c.id)).oomKilled) oomKilled = true;
      } catch {
        // status is best effort
      }
    }
    const termination = readTermination(c.config.runtimeDir, oomKilled);
    const errors: string[] = [];
    for (const isolator of [...this.isolatorsFor(c)].reverse()) {
      try {
        await isolator.cleanup(c.id);
      } catch (err) {
        errors.push(`${isolator.name}: ${(err as Error).message}`);
      }
    }
    if (c.pidfd !== undefined) {
      native().close(c.pidfd);
      c.pidfd = undefined;
    }
    if (existsSync(c.config.runtimeDir)) writeCheckpoint(join(c.config.runtimeDir, 'termination'), termination, VOLATILE);
    c.termination = termination;
    c.state = 'TERMINATED';
    this.opts.log.info('container state', { container: c.key, state: 'TERMINATED', exitCode: termination.exitCode, oomKilled });
    for (const w of c.waiters.splice(0)) w(termination);
    if (errors.length) this.opts.log.warn('isolator cleanup failed', { container: c.key, errors });
    return termination;
  }

  async wait(id: ContainerId): Promise<Termination | undefined> {
    const c = this.containers_.get(idString(id));
    if (!c) return undefined;
    if (c.termination) return c.termination;
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
    const key = idString(id);
    const c = this.containers_.get(key);
    if (c && c.state !== 'TERMINATED') throw new Error(`container ${id.value} has not terminated`);
    const config = c?.config;
    this.containers_.delete(key);
    if (id.parent) this.containers_.get(idString(id.parent))?.children.delete(key);
    if (config?.kind === 'container') await this.opts.provisioner.destroy(id.value);
    if (config) rmSync(config.runtimeDir, { recursive: true, force: true });
  }

  // ---- running containers ----------------------------------------------------

  async update(id: ContainerId, resources: ResourceLimits): Promise<void> {
    const c = this.mustGet(id);
    if (c.state === 'DESTROYING' || c.state === 'TERMINATED') throw new Error(`container ${id.value} is ${c.state}`);
    // All or nothing: no isolator writes before every one has accepted the values.
    for (const isolator of this.isolatorsFor(c)) await isolator.check?.(resources);
    for (const isolator of this.isolatorsFor(c)) await isolator.update(id, resources);
    c.config.resources = { ...c.config.resources, ...resources };
  }

  async usage(id: ContainerId): Promise<ResourceStatistics> {
    const c = this.mustGet(id);
    const stats: ResourceStatistics = { timestamp: Date.now() / 1000 };
    const parts = await Promise.allSettled(this.isolatorsFor(c).map((i) => i.usage(id)));
    for (const p of parts) if (p.status === 'fulfilled') Object.assign(stats, p.value);
    return stats;
  }

  async execSync(id: ContainerId, argv: string[], timeoutMs: number, proc: ProcessSpec): Promise<ExecResult> {
    const c = this.mustGet(id);
    if (c.state !== 'RUNNING' || c.pid === undefined) throw new Error(`container ${id.value} is not running`);
    const pid = c.pid;
    const [outR, outW] = native().pipe();
    const [errR, errW] = native().pipe();
    const stdout = collect(outR);
    const stderr = collect(errR);
    const pathEnv = proc.env.find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
    const spec: SpawnOptions = {
      file: argv[0]!,
      argv,
      env: proc.env,
      cloneNamespaces: [],
      joinNamespaces: NS_FOR_EXEC.map((type) => ({ type, path: namespacePath(pid, type) })),
      stdio: [-1, outW, errW],
      cwd: proc.cwd,
      uid: proc.uid,
      gid: proc.gid,
      groups: proc.groups,
      ...(proc.capabilities !== undefined ? { capabilities: proc.capabilities } : {}),
      noNewPrivs: proc.noNewPrivs ?? false,
      searchPath: pathEnv,
    };
    let child;
    try {
      let held;
      try {
        held = await native().spawnHeld(spec);
      } catch (err) {
        // The namespace files vanish when the container's init has exited (or is a zombie).
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && (err as NodeJS.ErrnoException).path?.startsWith(`/proc/${pid}/`)) {
          throw new Error(`container ${id.value} is not running: its process has exited`);
        }
        throw err;
      }
      try {
        // A DEBUG container shares its parent's cgroups (Mesos §5.5), freezer included.
        await this.opts.launcher.place(c.config, held.pid);
        await Promise.all(this.isolatorsFor(c).map((i) => i.isolate(id, held.pid)));
      } catch (err) {
        native().abort(held);
        throw err;
      }
      child = await native().release(held);
    } finally {
      native().close(outW);
      native().close(errW);
    }
    let timedOut = false;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            // The command is a session leader (spawn's setsid): kill its whole process group, so
            // children it forked do not outlive the timeout; the pidfd covers the leader regardless.
            try {
              process.kill(-child.pid, 'SIGKILL');
            } catch {
              // group gone meanwhile
            }
            try {
              native().pidfdSendSignal(child.pidfd, 9);
            } catch {
              // exited meanwhile
            }
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

  async control(id: ContainerId, line: string): Promise<void> {
    const c = this.mustGet(id);
    if (c.state !== 'RUNNING') throw new Error(`container ${id.value} is not running`);
    const fd = openSync(join(c.config.runtimeDir, 'ctl.fifo'), fsc.O_WRONLY | fsc.O_NONBLOCK);
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

  async recover(configs: ContainerConfig[], started: Set<string>): Promise<void> {
    const mine = configs.filter((c) => this.claims(c));
    for (const isolator of this.opts.isolators) {
      await isolator.recover(mine.filter((cfg) => cfg.kind === 'pod' || isolator.supportsNesting));
    }
    const orphans = await this.opts.launcher.recover(mine);
    if (orphans.length) this.opts.log.warn('killed orphan containers', { orphans });
    const dead: Container[] = [];
    // Roots first, so children can be linked to them.
    const ordered = [...mine].sort((a, b) => Number(!!a.id.parent) - Number(!!b.id.parent));
    for (const config of ordered) {
      const key = idString(config.id);
      const c: Container = { id: config.id, key, config, state: 'RUNNING', waiters: [], children: new Set() };
      if (config.id.parent) this.containers_.get(idString(config.id.parent))?.children.add(key);
      this.containers_.set(key, c);
      const termFile = join(config.runtimeDir, 'termination');
      if (existsSync(termFile)) {
        const { version: _v, ...t } = JSON.parse(readFileSync(termFile, 'utf8')) as Termination & { version: number };
        c.termination = t;
        c.state = 'TERMINATED';
        continue;
      }
      const pid = readPid(config.runtimeDir);
      if (pid !== undefined) {
        try {
          c.pidfd = native().pidfdOpen(pid);
          c.pid = pid;
          c.state = config.kind === 'pod' || started.has(key) || existsSync(join(config.runtimeDir, 'started')) ? 'RUNNING' : 'FETCHING';
          this.watchExit(c);
          this.opts.log.info('recovered container', { container: key, pid, state: c.state });
          continue;
        } catch {
          // exited between the check and the open
        }
      }
      dead.push(c);
    }
    // Containers whose init died while we were down: destroy now, which reads their status file.
    for (const c of dead) {
      this.opts.log.info('container exited while the daemon was down', { container: c.key });
      await this.destroy(c.id);
    }
  }

  private claims(config: ContainerConfig): boolean {
    return config.runtimeHandler === undefined || config.runtimeHandler === '' || config.runtimeHandler === 'mesos';
  }

  // ---- helpers ---------------------------------------------------------------

  /** Every isolator accepts the resources (ResourceError otherwise), before anything is created. */
  private async check(config: ContainerConfig): Promise<void> {
    const isolators = config.kind === 'container' ? this.opts.isolators.filter((i) => i.supportsNesting) : this.opts.isolators;
    for (const isolator of isolators) await isolator.check?.(config.resources);
  }

  private isolatorsFor(c: Container): Isolator[] {
    return c.config.kind === 'container' ? this.opts.isolators.filter((i) => i.supportsNesting) : this.opts.isolators;
  }

  private mustGet(id: ContainerId): Container {
    const c = this.containers_.get(idString(id));
    if (!c) throw new Error(`container ${id.value} is unknown`);
    return c;
  }

  private checkAlive(c: Container, during: string): void {
    if (c.state === 'DESTROYING' || c.state === 'TERMINATED') throw new Error(`container destroyed during ${during}`);
  }

  private transition(c: Container, state: State): void {
    if (c.state === 'DESTROYING' && state !== 'DESTROYING') {
      throw new Error(`container ${c.key} destroyed during ${c.state.toLowerCase()}`);
    }
    c.state = state;
    this.opts.log.info('container state', { container: c.key, state });
  }
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

/** The recorded init pid when that same process still runs (not reused, not a zombie). */
export function readPid(runtimeDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(runtimeDir, 'pid'), 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const recorded = readFileSync(join(runtimeDir, 'pid.start'), 'utf8').trim();
    // PIDs are reused: only the same process (same start time) is ours.
    if (!recorded || processStartTime(pid) !== recorded) return undefined;
    // Our old children are reaped by whoever adopted them, maybe not yet: a zombie has exited.
    if (processIsDead(pid)) return undefined;
    return pid;
  } catch {
    return undefined;
  }
}

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Zombie (Z) or dead (X) per field 3 of /proc/<pid>/stat. */
function processIsDead(pid: number): boolean {
  const state = statFields(pid)?.[0];
  return state === undefined || state === 'Z' || state === 'X';
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
    text = readFileSync(join(runtimeDir, 'status'), 'utf8').trim();
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

function tail(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-3).join('; ');
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

interface Collector {
  done(graceMs: number): Promise<Buffer>;
}

function collect(fd: number): Collector {
  const chunks: Buffer[] = [];
  const sock = new Socket({ fd, readable: true, writable: false });
  const ended = new Promise<void>((resolve) => {
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('end', resolve);
    sock.on('close', resolve);
    sock.on('error', () => resolve());
  });
  return {
    async done(graceMs: number) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ended, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      if (timer) clearTimeout(timer);
      sock.destroy();
      return Buffer.concat(chunks);
    },
  };
}

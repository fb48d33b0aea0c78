// Wires the daemon together: stores, the composing containerizer over the
// Mesos containerizer, recovery, and the CRI server on its unix socket.
import * as grpc from '@grpc/grpc-js';
import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname, join } from 'node:path';
import type { DaemonConfig } from './config.js';
import type { Logger } from './log.js';
import { Cgroups } from './cgroups/index.js';
import { enableFavorDynmods } from './cgroups/favordynmods.js';
import { ComposingContainerizer } from './containerizer/composing.js';
import { MesosContainerizer } from './containerizer/mesos/containerizer.js';
import type { Isolator } from './containerizer/mesos/isolator.js';
import { LinuxLauncher } from './containerizer/mesos/launcher/linux.js';
import { PosixLauncher } from './containerizer/mesos/launcher/posix.js';
import type { Launcher } from './containerizer/mesos/launcher/launcher.js';
import { CpuIsolator } from './containerizer/mesos/isolators/cgroups/cpu.js';
import { MemoryIsolator } from './containerizer/mesos/isolators/cgroups/memory.js';
import { PidsIsolator } from './containerizer/mesos/isolators/cgroups/pids.js';
import { CpusetIsolator } from './containerizer/mesos/isolators/cgroups/cpuset.js';
import { HugetlbIsolator } from './containerizer/mesos/isolators/cgroups/hugetlb.js';
import { PidNamespaceIsolator } from './containerizer/mesos/isolators/namespaces/pid.js';
import { IpcNamespaceIsolator } from './containerizer/mesos/isolators/namespaces/ipc.js';
import { LoopbackNetworkIsolator } from './containerizer/mesos/isolators/network/loopback.js';
import { LinuxFilesystemIsolator } from './containerizer/mesos/isolators/filesystem/linux.js';
import { ImageStore } from './images/store.js';
import { Provisioner } from './provisioner/provisioner.js';
import { MetadataStore, NameRegistry, containerName, sandboxName, type ContainerRecord, type SandboxRecord } from './store/metadata.js';
import { containerId, podId, type RuntimeContext } from './cri/context.js';
import { createCriServer } from './cri/server.js';
import { recordTermination } from './cri/runtime/common.js';
import { CpuSampleCache } from './cri/stats.js';
import { CriFront } from './cri/h2front/front.js';

export class Daemon {
  private constructor(
    readonly ctx: RuntimeContext,
    private readonly server: grpc.Server,
    private readonly front: CriFront | undefined,
    readonly ready: Promise<void>,
  ) {}

  static async start(config: DaemonConfig, log: Logger): Promise<Daemon> {
    for (const dir of [config.workDir, config.runtimeDir, join(config.runtimeDir, 'containers')]) mkdirSync(dir, { recursive: true, mode: 0o711 });
    if (config.cgroupFavorDynmods) {
      try {
        const mounted = enableFavorDynmods(config.runtimeDir);
        log.info('cgroup favordynmods is on', mounted ? { mountedAt: mounted } : { already: true });
      } catch (err) {
        log.warn('cannot turn on cgroup favordynmods; cgroup moves will wait for RCU grace periods', { error: String(err) });
      }
    }
    const cgroups = Cgroups.detect();
    let launcher: Launcher;
    if (config.launcher === 'linux') {
      if (!LinuxLauncher.available(cgroups)) throw new Error('the linux launcher needs root and a freezer cgroup (v1) or cgroup2; use --launcher=posix');
      launcher = new LinuxLauncher(cgroups, config.cgroupRoot, log);
    } else {
      launcher = new PosixLauncher();
    }
    const cg = { cgroups, root: config.cgroupRoot, log };
    // filesystem/linux goes last: its plan ends with pivot_root, after which host paths are gone.
    const isolators: Isolator[] =
      config.launcher === 'linux'
        ? [
            new PidNamespaceIsolator(),
            new IpcNamespaceIsolator(config.shmSize),
            new LoopbackNetworkIsolator(),
            new CpuIsolator(cg),
            new MemoryIsolator(cg),
            new PidsIsolator(cg),
            new CpusetIsolator(cg),
            new HugetlbIsolator(cg),
            new LinuxFilesystemIsolator(),
          ]
        : [];
    const images = new ImageStore(join(config.workDir, 'images'));
    await images.init();
    const provisioner = new Provisioner(join(config.workDir, 'provisioner'), images);
    const mesos = new MesosContainerizer({ isolators, launcher, provisioner, log, launchTimeoutMs: config.launchTimeoutSeconds * 1000 });
    const members = config.containerizers.map((name) => {
      if (name === 'mesos') return { name, containerizer: mesos };
      throw new Error(`containerizer "${name}" is not built yet; use --containerizers=mesos`);
    });
    const containerizer = new ComposingContainerizer(members);
    const sandboxes = new MetadataStore<SandboxRecord>(join(config.workDir, 'meta', 'sandboxes'));
    const containers = new MetadataStore<ContainerRecord>(join(config.workDir, 'meta', 'containers'));

    const ctx: RuntimeContext = {
      config,
      log,
      sandboxes,
      containers,
      names: new NameRegistry(),
      containerizer,
      images,
      cpuSamples: new CpuSampleCache(),
      podCidr: '',
      imageUsers: (imageId) => containers.list().filter((c) => c.imageId === imageId).map((c) => c.id),
      watchContainer: (record) => {
        void containerizer.wait(containerId(record)).then((t) => {
          if (t) recordTermination(ctx, record.id, t);
        });
      },
      watchSandbox: (id) => {
        void containerizer.wait(podId(id)).then((t) => {
          if (t && sandboxes.get(id)?.state === 'SANDBOX_READY') {
            sandboxes.update(id, { state: 'SANDBOX_NOTREADY' });
            log.info('pod sandbox init exited', { pod: id, exitCode: t.exitCode });
          }
        });
      },
    };

    const ready = recover(ctx, provisioner);
    const server = createCriServer(ctx, ready);
    const front = await listen(server, config, log);
    log.info('serving CRI', { socket: config.socket, containerizers: config.containerizers.join(','), launcher: launcher.name, front: config.criFront });
    ready.then(
      () => log.info('recovery done', { pods: sandboxes.list().length, containers: containers.list().length }),
      (err) => log.error('recovery failed', { error: String(err) }),
    );
    return new Daemon(ctx, server, front, ready);
  }

  /** Stop serving. Containers keep running: their launch helpers hold their pipes and exit statuses. */
  async stop(): Promise<void> {
    this.front?.stopAccepting();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.front?.close();
    rmSync(this.ctx.config.socket, { force: true });
  }
}

async function recover(ctx: RuntimeContext, provisioner: Provisioner): Promise<void> {
  const bad = (file: string, err: unknown) => ctx.log.error('skipping unreadable checkpoint', { file, error: String(err) });
  const pods = ctx.sandboxes.load(bad);
  const ctrs = ctx.containers.load(bad).filter((c) => {
    if (ctx.sandboxes.get(c.sandboxId)) return true;
    ctx.log.warn('dropping container of an unknown pod', { container: c.id, pod: c.sandboxId });
    ctx.containers.delete(c.id);
    return false;
  });
  for (const p of pods) ctx.names.reserve(sandboxName(p.config), p.id);
  for (const c of ctrs) ctx.names.reserve(containerName(c.config, ctx.sandboxes.get(c.sandboxId)!.config), c.id);
  const started = new Set(ctrs.filter((c) => c.state === 'CONTAINER_RUNNING').map((c) => `${c.sandboxId}.${c.id}`));
  await ctx.containerizer.recover([...pods.map((p) => p.mesos), ...ctrs.map((c) => c.mesos)], started);
  await provisioner.recover(ctrs.map((c) => c.id));
  for (const c of ctrs) {
    if (c.state === 'CONTAINER_EXITED') continue;
    const id = containerId(c);
    if (ctx.containerizer.isRunning(id) || ctx.containerizer.pid(id) !== undefined) {
      ctx.watchContainer(c);
    } else {
      const t = await ctx.containerizer.wait(id);
      if (t) recordTermination(ctx, c.id, t);
      else ctx.containers.update(c.id, { state: 'CONTAINER_UNKNOWN' });
    }
  }
  for (const p of pods) {
    if (p.state !== 'SANDBOX_READY') continue;
    if (ctx.containerizer.isRunning(podId(p.id))) ctx.watchSandbox(p.id);
    else ctx.sandboxes.update(p.id, { state: 'SANDBOX_NOTREADY' });
  }
}

/**
 * Bind the socket: a stale file is replaced, a live daemon on it refuses our
 * start. With the front, the front owns the socket and grpc-js binds nothing.
 */
async function listen(server: grpc.Server, config: DaemonConfig, log: Logger): Promise<CriFront | undefined> {
  const socket = config.socket;
  mkdirSync(dirname(socket), { recursive: true, mode: 0o711 });
  if (existsSync(socket)) {
    const live = await new Promise<boolean>((resolve) => {
      const s = createConnection(socket);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (live) throw new Error(`another process is serving on ${socket}`);
    rmSync(socket, { force: true });
  }
  let front: CriFront | undefined;
  if (config.criFront) {
    front = await CriFront.listen(server, socket, log);
  } else {
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
  }
  chmodSync(socket, 0o660);
  return front;
}

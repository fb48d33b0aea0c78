// Wires the daemon together: stores, the composing containerizer over the
// Mesos containerizer, recovery, and the CRI server on its unix socket.
import * as grpc from '@grpc/grpc-js';
import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { basename, dirname, join } from 'node:path';
import { containerRecordsDir, containersDir, dockerCniStateDir, imagesDir, provisionerDir, quarantineDir, sandboxRecordsDir } from './paths.js';
import { Quarantine } from './store/quarantine.js';
import { checkpointsCommitted, setCommitErrorHandler, setCommitWhen } from './store/checkpoint.js';
import { parseDuration, type DaemonConfig } from './config.js';
import { setPodLookup, type Logger } from './log.js';
import { Cgroups, statFileReads } from './cgroups/index.js';
import { enableFavorDynmods } from './cgroups/favordynmods.js';
import { ComposingContainerizer } from './containerizer/composing.js';
import { MesosContainerizer } from './containerizer/mesos/containerizer.js';
import { DockerContainerizer } from './containerizer/docker/containerizer.js';
import { dockerArchive } from './docker/archive.js';
import type { Containerizer } from './containerizer/containerizer.js';
import { idString, type ContainerId, type Isolator } from './containerizer/mesos/isolator.js';
import { LinuxLauncher } from './containerizer/mesos/launcher/linux.js';
import { PosixLauncher } from './containerizer/mesos/launcher/posix.js';
import type { Launcher } from './containerizer/mesos/launcher/launcher.js';
import { PodPool, podPoolApplies } from './containerizer/mesos/launcher/pod-pool.js';
import { Activity, QUIET_MS } from './util/activity.js';
import { CpuIsolator } from './containerizer/mesos/isolators/cgroups/cpu.js';
import { MemoryIsolator } from './containerizer/mesos/isolators/cgroups/memory.js';
import { PidsIsolator } from './containerizer/mesos/isolators/cgroups/pids.js';
import { CpusetIsolator } from './containerizer/mesos/isolators/cgroups/cpuset.js';
import { HugetlbIsolator } from './containerizer/mesos/isolators/cgroups/hugetlb.js';
import { DevicesIsolator } from './containerizer/mesos/isolators/cgroups/devices.js';
import { PidNamespaceIsolator } from './containerizer/mesos/isolators/namespaces/pid.js';
import { UserNamespaceIsolator } from './containerizer/mesos/isolators/namespaces/user.js';
import { IpcNamespaceIsolator } from './containerizer/mesos/isolators/namespaces/ipc.js';
import { CniNetworkIsolator } from './containerizer/mesos/isolators/network/cni.js';
import { CniExec } from './network/cni.js';
import { NetworkConfigWatcher } from './network/conf-dir.js';
import { PodNetworks } from './network/pod-network.js';
import { LinuxFilesystemIsolator } from './containerizer/mesos/isolators/filesystem/linux.js';
import { ImageStore } from './images/store.js';
import { CredentialCache } from './images/credential-cache.js';
import { configCredentials } from './images/pull.js';
import { pullerFor } from './cri/image/pull-image.js';
import { Provisioner } from './provisioner/provisioner.js';
import { MetadataStore, NameRegistry, containerName, sandboxName, type ContainerRecord, type SandboxRecord } from './store/metadata.js';
import { containerId, nowNanos, podId, type RuntimeContext } from './cri/context.js';
import { createCriServer } from './cri/server.js';
import { recordTermination } from './cri/runtime/common.js';
import { relaunchContainer } from './cri/runtime/container-launch.js';
import { EventBus } from './cri/events.js';
import { StatsSampler } from './cri/stats-sampler.js';
import { statsTargets } from './cri/runtime/stats-common.js';
import { DiskUsageWatcher } from './util/disk-usage.js';
import { DiskDuIsolator } from './containerizer/mesos/isolators/disk/du.js';
import { CriFront } from './cri/h2front/front.js';
import { StreamServer, type Runtime } from './stream/server.js';
import { streamRuntime } from './cri/streaming/runtime.js';
import type { MetricsServer } from './metrics/server.js';
import type { RecoverySummary } from './metrics/metrics.js';
import { status } from './cri/runtime/status.js';
import { holdRecovery } from './fault.js';

export class Daemon {
  private constructor(
    readonly ctx: RuntimeContext,
    private readonly server: grpc.Server,
    private readonly front: CriFront | undefined,
    readonly ready: Promise<void>,
    private readonly streams: StreamServer,
    private readonly metricsServer: MetricsServer | undefined,
    private readonly diskUsage: DiskUsageWatcher,
    private readonly podPool: PodPool | undefined,
  ) {}

  static async start(config: DaemonConfig, log: Logger): Promise<Daemon> {
    for (const dir of [config.workDir, config.runtimeDir, containersDir(config.runtimeDir)]) mkdirSync(dir, { recursive: true, mode: 0o711 });
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
    let podPool: PodPool | undefined;
    // The CRI calls in flight: the pod pool refills in quiet moments.
    const activity = new Activity();
    if (config.launcher === 'linux') {
      if (!LinuxLauncher.available(cgroups)) throw new Error('the linux launcher needs root and a freezer cgroup (v1) or cgroup2; use --launcher=posix');
      const linux = new LinuxLauncher(cgroups, config.cgroupRoot, log);
      launcher = linux;
      if (podPoolApplies(config.podPoolSize, linux)) podPool = new PodPool({ size: config.podPoolSize, launcher: linux, runtimeDir: config.runtimeDir, log, activity });
    } else {
      launcher = new PosixLauncher();
    }
    const cg = { cgroups, root: config.cgroupRoot, log };
    // The CNI network: read (plugins asked for their versions) behind the recovery gate, then watched.
    const network = config.launcher === 'linux' ? new NetworkConfigWatcher(config.cniConfDir, new CniExec(config.cniBinDirs), log, config.cniConfTemplate) : undefined;
    const cni = network ? new CniNetworkIsolator(config.workDir, network, network.exec, log) : undefined;
    // The writable layers' du (disk/du and docker containers), walked in the background at a bounded cost.
    const diskUsage = new DiskUsageWatcher({ log });
    const images = new ImageStore(imagesDir(config.workDir));
    await images.init();
    const provisioner = new Provisioner(provisionerDir(config.workDir), images);
    provisioner.onDeleteError = (dir, err) => log.warn('deleting a removed container\'s rootfs failed; the next start tries again', { dir, error: String(err) });
    // What a Remove leaves to delete waits until the calls pause (at most a second).
    const deleteWhen = () => activity.quiet(QUIET_MS, 1000);
    provisioner.deleteWhen = deleteWhen;
    // filesystem/linux goes last: its plan ends with pivot_root, after which host paths are gone.
    const isolators: Isolator[] =
      config.launcher === 'linux'
        ? [
            // First: the pod's user namespace must exist before the namespaces it owns (network/cni's).
            new UserNamespaceIsolator(),
            new PidNamespaceIsolator(),
            new IpcNamespaceIsolator(config.shmSize),
            cni!,
            new CpuIsolator(cg),
            new MemoryIsolator(cg),
            new PidsIsolator(cg),
            new CpusetIsolator(cg),
            new HugetlbIsolator(cg),
            new DevicesIsolator(cg),
            new DiskDuIsolator(diskUsage, (id) => provisioner.upperPath(id), provisioner.root),
            new LinuxFilesystemIsolator(),
          ]
        : [];
    const quarantine = new Quarantine(quarantineDir(config.workDir), log);
    const mesos = new MesosContainerizer({
      isolators,
      launcher,
      provisioner,
      log,
      launchTimeoutMs: config.launchTimeoutSeconds * 1000,
      runtimeDir: config.runtimeDir,
      quarantine,
      deleteWhen,
      ...(podPool ? { podPool } : {}),
      // Launch phases are timed only when there are metrics to tell (ctx is bound below, before any launch).
      ...(config.metricsAddress ? { onPhase: (phase: string, kind: 'pod' | 'container', seconds: number) => ctx.metrics?.launchPhase(phase, kind, seconds) } : {}),
    });
    const credentialCache = new CredentialCache();
    const members = config.containerizers.map((name) => {
      if (name === 'mesos') return { name, containerizer: mesos as Containerizer };
      if (name === 'docker') {
        const docker = new DockerContainerizer({
          dockerHost: config.dockerHost,
          runtimeDir: config.runtimeDir,
          registries: config.registries,
          log,
          // The docker-executor is this same CLI (the bundle, or the sources through tsx), with our node flags.
          cli: [process.execPath, ...process.execArgv, process.argv[1]!],
          // Docker pods on network POD: the same CNI network and plugins, state of their own.
          ...(network ? { network: new PodNetworks(dockerCniStateDir(config.workDir), network, network.exec, log) } : {}),
          ...(config.dockerMesosImage ? { executorImage: config.dockerMesosImage } : {}),
          cgroups,
          diskUsage,
          credentials: (ref, host) => credentialCache.lookup(ref) ?? configCredentials(config.registries, host),
          fromStore: async (ref, engine, creds) => {
            let lease = await images.lease(ref, 'docker load');
            if (!lease) {
              await pullerFor({ images, log, config, imageUsers: () => [] }).pull(ref, { creds });
              lease = await images.lease(ref, 'docker load');
              if (!lease) return undefined;
            }
            try {
              const tagged = !ref.includes('@') && lease.image.repoTags.length > 0;
              await engine.loadStream(dockerArchive(images, lease.image, tagged ? [ref] : []));
              // By id: a digest reference cannot be a RepoTag, and the id is what was loaded.
              return lease.image.id;
            } finally {
              lease.release();
            }
          },
        });
        return { name, containerizer: docker as Containerizer };
      }
      throw new Error(`containerizer "${name}" is unknown (known: mesos, docker)`);
    });
    const dockerMember = members.find((m) => m.name === 'docker')?.containerizer as DockerContainerizer | undefined;
    if (dockerMember) {
      try {
        await dockerMember.engine.ping();
      } catch (err) {
        // Not fatal: the Engine may come up later; docker pods fail with its error until then.
        log.warn('the Docker Engine does not answer; docker pods cannot run until it does', { dockerHost: config.dockerHost, error: String(err) });
      }
    }
    const containerizer = new ComposingContainerizer(members);
    setCommitErrorHandler((path, err) => log.warn('fsync of a record failed; it stays as the kernel holds it', { path, error: String(err) }));
    setCommitWhen(() => activity.quiet(QUIET_MS, 200));
    const sandboxes = new MetadataStore<SandboxRecord>(sandboxRecordsDir(config.workDir));
    const containers = new MetadataStore<ContainerRecord>(containerRecordsDir(config.workDir));
    // Every log line about a pod names it: `pod` is a pod id; `container` a CRI container id or a
    // containerizer key (<pod> or <pod>.<container>).
    setPodLookup(log, (fields) => {
      let pod = typeof fields.pod === 'string' ? fields.pod : undefined;
      if (!pod && typeof fields.container === 'string') pod = containers.get(fields.container)?.sandboxId ?? fields.container.split('.')[0];
      const metadata = pod ? sandboxes.get(pod)?.config.metadata : undefined;
      return metadata ? { podName: metadata.name, podNamespace: metadata.namespace } : undefined;
    });

    // The runtime is bound late (ctx below): no stream can arrive before a URL was handed out.
    let runtime: Runtime | undefined;
    const streams = new StreamServer(
      {
        exec: (req, io) => runtime!.exec(req, io),
        attach: (req, io) => runtime!.attach(req, io),
        portForward: (pod, port) => runtime!.portForward(pod, port),
      },
      {
        address: config.streamServerAddress,
        port: config.streamServerPort,
        idleTimeoutMs: parseDuration(config.streamIdleTimeout, 'stream_idle_timeout'),
        ...(config.streamTlsCert ? { tlsCertFile: config.streamTlsCert, tlsKeyFile: config.streamTlsKey } : {}),
        logger: log,
      },
    );
    const events = new EventBus(() => ctx, config.eventsBuffer);
    const ctx: RuntimeContext = {
      config,
      events,
      log,
      sandboxes,
      containers,
      names: new NameRegistry(),
      containerizer,
      images,
      credentials: credentialCache,
      stats: new StatsSampler({
        windowMs: parseDuration(config.statsCollectPeriod, 'stats_collect_period'),
        targets: () => statsTargets(ctx),
        // The detail matters: most passes read the CPU counters alone.
        usage: (id, detail) => containerizer.usage(id, detail),
        fileReads: statFileReads,
        log,
      }),
      podCidr: '',
      launches: new Map(),
      quietMoment: (maxMs, signal) => activity.quiet(QUIET_MS, maxMs, signal),
      ...(network ? { network } : {}),
      quarantine,
      streams,
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
            events.emit('CONTAINER_STOPPED_EVENT', id, id);
            log.info('pod sandbox init exited', { pod: id, exitCode: t.exitCode });
          }
        });
      },
    };

    runtime = streamRuntime(ctx);
    // A recovered pod whose CNI CHECK fails is NOTREADY; the reason is in its verbose status.
    const onProblem = (id: ContainerId, problem: string) => {
      if (ctx.sandboxes.get(id.value)?.state !== 'SANDBOX_READY') return;
      ctx.sandboxes.update(id.value, { state: 'SANDBOX_NOTREADY' });
      log.warn('pod sandbox NOTREADY: its network is broken', { pod: id.value, problem });
    };
    if (cni) cni.onProblem = onProblem;
    if (dockerMember) dockerMember.onProblem = onProblem;
    // Metrics before recovery, so that it is measured, and a listener that cannot bind fails the start before anything began.
    let recovery: 'pending' | 'done' | { failed: string } = 'pending';
    const metricsServer = config.metricsAddress ? await serveMetrics(ctx, () => recovery) : undefined;
    const recoveryStarted = process.hrtime.bigint();
    const recovering = recover(ctx, provisioner).then((counts) => ctx.metrics?.recovered({ seconds: Number(process.hrtime.bigint() - recoveryStarted) / 1e9, ...counts }));
    const ready = Promise.all([recovering.finally(() => events.recovered()), network?.start()]).then(() => holdRecovery());
    ready.then(
      () => (recovery = 'done'),
      (err: unknown) => (recovery = { failed: String(err) }),
    );
    const server = createCriServer(ctx, ready, activity);
    // Listening before the CRI socket is: every Exec URL handed out points at a live server.
    try {
      await streams.start();
    } catch (err) {
      await metricsServer?.close();
      throw err;
    }
    let front;
    try {
      front = await listen(server, config, log);
    } catch (err) {
      await streams.stop();
      await metricsServer?.close();
      throw err;
    }
    log.info('serving CRI', { socket: config.socket, containerizers: config.containerizers.join(','), launcher: launcher.name, front: config.criFront });
    ready.then(
      () => {
        log.info('recovery done', { pods: sandboxes.list().length, containers: containers.list().length });
        // The sampler's first pass reads every object in full: not while the calls held at the gate
        // are answered (100 pods + 200 containers after a kill -9: the first answer ~30 ms
        // sooner, all of them in their state ~110 ms sooner). Stats asked for meanwhile are read on the spot.
        ctx.stats.start(Math.min(ctx.stats.windowMs, 1000));
        diskUsage.start();
      },
      (err) => log.error('recovery failed', { error: String(err) }),
    );
    return new Daemon(ctx, server, front, ready, streams, metricsServer, diskUsage, podPool);
  }

  /**
   * The systemd watchdog's health check: what answers the CRI Status RPC, behind the same
   * recovery gate, called in-process. True when it answers and reports RuntimeReady.
   */
  async statusProbe(): Promise<boolean> {
    await this.ready;
    const res = await status(this.ctx, { verbose: false });
    return res.status?.conditions?.some((c) => c.type === 'RuntimeReady' && c.status) ?? false;
  }

  /** Stop serving. Containers keep running: their launch helpers hold their pipes and exit statuses. */
  async stop(): Promise<void> {
    this.ctx.network?.close();
    this.front?.stopAccepting();
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    this.front?.close();
    await this.streams.stop();
    await this.metricsServer?.close();
    // Its helpers were never pods: they do not outlive the daemon (pods do).
    await Promise.all([this.ctx.stats.stop(), this.diskUsage.stop(), this.podPool?.close()]);
    await checkpointsCommitted();
    rmSync(this.ctx.config.socket, { force: true });
  }
}

/**
 * Recovery: each layer reads its own checkpoints, then the two views are reconciled by these
 * rules (never by deleting what cannot be read):
 * - a CRI record whose container the containerizer does not know (its runtime state is gone,
 *   e.g. after a reboot): a pod is NOTREADY; a container EXITED with code 255, reason Unknown;
 * - a container only the containerizer knows (a RunPodSandbox/CreateContainer that never
 *   answered): destroyed and removed, as the kubelet retries the request;
 * - a container whose liveness could not be told, or whose runtime checkpoint is quarantined:
 *   UNKNOWN in CRI, left alone;
 * - an unreadable record, on either side, and a container record whose pod record is missing:
 *   moved to the quarantine dir, its containers left alone, shown in Status.
 */
async function recover(ctx: RuntimeContext, provisioner: Provisioner): Promise<Omit<RecoverySummary, 'seconds'>> {
  const quarantine = ctx.quarantine;
  const pods = ctx.sandboxes.load((file, err) => quarantine.add(file, err, 'sandbox'));
  const ctrs = ctx.containers.load((file, err) => quarantine.add(file, err, 'container')).filter((c) => {
    if (ctx.sandboxes.get(c.sandboxId)) return true;
    ctx.containers.forget(c.id);
    quarantine.add(join(containerRecordsDir(ctx.config.workDir), `${c.id}.json`), new Error(`its pod ${c.sandboxId} has no record`), 'container');
    return false;
  });
  const report = await ctx.containerizer.recover();
  // Ids of quarantined records (file names are ids) and checkpoints: nobody touches their containers.
  const untouchable = new Set([...quarantine.list().map((q) => basename(q.from, '.json')), ...report.protected.map((id) => id.value)]);
  const found = new Map(report.containers.map((c) => [idString(c.id), c]));
  // What the metrics tell of this recovery (every outcome named, 0 included).
  const outcomes: Record<string, number> = { running: 0, created: 0, exited: 0, unverified: 0, quarantined: report.protected.length, lost: 0 };
  for (const r of report.containers) {
    const outcome = r.unverified ? 'unverified' : r.interrupted ? 'created' : r.state === 'RUNNING' ? 'running' : r.state === 'FETCHING' ? 'created' : r.state === 'TERMINATED' || r.state === 'DESTROYING' ? 'exited' : r.state.toLowerCase();
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  }

  for (const p of pods) ctx.names.reserve(sandboxName(p.config), p.id);
  for (const c of ctrs) ctx.names.reserve(containerName(c.config, ctx.sandboxes.get(c.sandboxId)!.config), c.id);

  for (const p of pods) {
    const r = found.get(p.id);
    const live = r && r.state !== 'TERMINATED' && r.state !== 'DESTROYING';
    if (live && p.state === 'SANDBOX_READY') ctx.watchSandbox(p.id);
    // Deferred write: a pod whose init the containerizer reports dead reads NOTREADY again after a crash.
    else if (p.state === 'SANDBOX_READY') {
      ctx.sandboxes.updateDeferred(p.id, { state: 'SANDBOX_NOTREADY' });
      ctx.events.emit('CONTAINER_STOPPED_EVENT', p.id, p.id);
    }
  }
  const exited: Promise<unknown>[] = [];
  const interrupted: ContainerRecord[] = [];
  for (const c of ctrs) {
    const id = containerId(c);
    const r = found.get(idString(id));
    if (c.state === 'CONTAINER_EXITED') continue;
    if (!r && (untouchable.has(c.id) || untouchable.has(c.sandboxId))) {
      // Its runtime checkpoint is quarantined: whether it runs is not ours to say.
      ctx.containers.update(c.id, { state: 'CONTAINER_UNKNOWN' });
    } else if (!r) {
      outcomes.lost!++;
      ctx.log.warn('container recovered by no containerizer after a restart; marked exited', {
        container: c.id,
        pod: c.sandboxId,
        handler: ctx.sandboxes.get(c.sandboxId)?.runtimeHandler ?? '',
        containerizers: ctx.config.containerizers.join(','),
      });
      ctx.containers.update(c.id, {
        state: 'CONTAINER_EXITED',
        exitCode: 255,
        reason: 'Unknown',
        message: `no containerizer (${ctx.config.containerizers.join(', ')}) recovered the container after a restart of cri-mesos (its runtime state is gone, e.g. after a reboot, or its docker container was removed)`,
        finishedAt: nowNanos(),
      });
      ctx.events.emit('CONTAINER_STOPPED_EVENT', c.id, c.sandboxId);
    } else if (r.unverified) {
      ctx.containers.update(c.id, { state: 'CONTAINER_UNKNOWN' });
    } else if (r.interrupted && c.state === 'CONTAINER_CREATED') {
      // CreateContainer answered, the crash came before its helper was held: launched again below.
      interrupted.push(c);
    } else if (r.state === 'TERMINATED' || r.state === 'DESTROYING') {
      // Exited while we were down: its exit status is read before the gate opens, its cleanup goes on behind.
      exited.push(ctx.containerizer.wait(id).then((t) => t && recordTermination(ctx, c.id, t, { deferWrite: true })));
    } else {
      // A start cut short by the crash was completed by the containerizer (its start marker).
      if (r.state === 'RUNNING' && c.state === 'CONTAINER_CREATED') ctx.containers.update(c.id, { state: 'CONTAINER_RUNNING', startedAt: nowNanos() });
      ctx.watchContainer(ctx.containers.get(c.id)!);
    }
  }

  await Promise.all(exited);
  // Containers only the containerizer knows: a create that never answered. A pod takes its
  // nested containers with it.
  const criKnows = (id: ContainerId) => (id.parent ? ctx.containers.get(id.value)?.sandboxId === id.parent.value : !!ctx.sandboxes.get(id.value));
  const unknown = report.containers.filter((r) => !criKnows(r.id) && !untouchable.has(r.id.value) && !(r.id.parent && untouchable.has(r.id.parent.value)));
  for (const r of unknown.filter((x) => !x.id.parent || criKnows(x.id.parent))) {
    ctx.log.warn('destroying a container the CRI layer has no record of (a create that never answered)', { container: idString(r.id), runtimeDir: r.config.runtimeDir });
    try {
      await ctx.containerizer.destroy(r.id);
      await ctx.containerizer.remove(r.id);
    } catch (err) {
      ctx.log.error('cannot remove an unrecorded container', { container: idString(r.id), error: String(err) });
    }
  }
  // Rootfs dirs of containers nobody knows; known = whatever the containerizer still has, or cannot touch.
  const removed = await provisioner.recover([...ctx.containerizer.containers().map((id) => id.value), ...untouchable]);
  if (removed.length) ctx.log.warn('removed rootfs dirs no container knows', { removed });
  // After the rootfs sweep, which would take a new launch's rootfs for an unknown one. Before
  // the gate opens: StartContainer finds the launch to wait for.
  for (const c of interrupted) relaunchContainer(ctx, c);
  const orphans = { cgroup: report.orphans.length, unrecorded: unknown.length, rootfs: removed.length };
  void report.cleanup.then(() => ctx.log.info('containers that exited while the daemon was down are cleaned up'));
  // The records recovery changed reach the disk once the gate is open, behind the first RPCs.
  setImmediate(() => {
    Promise.all([ctx.sandboxes.flushDeferred(), ctx.containers.flushDeferred()]).catch((err) => ctx.log.error('writing recovered records', { error: String(err) }));
  });
  return { containers: outcomes, orphans };
}

/**
 * metrics_address: the Prometheus metrics on the context and their listener. prom-client is
 * loaded only then, so a daemon without metrics does not pay for it at start-up.
 */
async function serveMetrics(ctx: RuntimeContext, recovery: () => 'pending' | 'done' | { failed: string }): Promise<MetricsServer> {
  const [{ Metrics }, { MetricsServer }, { attachMetrics, runtimeHealth }] = await Promise.all([
    import('./metrics/metrics.js'),
    import('./metrics/server.js'),
    import('./metrics/runtime.js'),
  ]);
  const metrics = new Metrics();
  attachMetrics(ctx, metrics);
  return MetricsServer.listen(ctx.config.metricsAddress, metrics, runtimeHealth(ctx, recovery), ctx.log);
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

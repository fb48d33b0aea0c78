// The Docker containerizer (Mesos src/slave/containerizer/docker.cpp), for CRI: a pod is an
// infra ("pause") container started with IpcMode shareable; each CRI container is a docker
// container joining its network, IPC and (PID POD) PID namespaces (`container:<id>` modes),
// run and supervised by a `cri-mesos docker-executor` subprocess (mode B) that writes its CRI
// log and exit status. Everything cri-mesos makes carries labels (io.cri-mesos.*), by which
// recovery finds it again after a restart.
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { createHash } from 'node:crypto';
import tar from 'tar-stream';
import type {
  AttachHandle,
  Census,
  Containerizer,
  ContainerStatus,
  ExecHandle,
  ExecIO,
  ExecResult,
  LaunchRequest,
  LaunchResult,
  RecoveryReport,
  Termination,
} from '../containerizer.js';
import { type ContainerConfig, type ContainerId, type ResourceLimits, type ResourceStatistics, type UsageDetail, idString } from '../mesos/isolator.js';
import type { Logger } from '../../log.js';
import type { RegistriesConfig } from '../../config.js';
import type { Credentials } from '../../images/registry.js';
import type { ProcessSpec } from '../../store/metadata.js';
import { Demux, Engine, EngineError, rfc3339Nanos, socketPath, type ContainerInspect, type EngineAuth, type EngineRegistryConfig } from '../../docker/engine.js';
import { dirname, join } from 'node:path';
import { BUNDLE_FILE, projectRoot } from '../../util/paths.js';
import { dockerContainerDir, dockerContainersDir, nestedContainersDir, runtimeFile } from '../../paths.js';
import { failedPrecondition, internal, invalidArgument, notFound, unimplemented, unavailable, withContext } from '../../errors.js';
import { MS, native, unpinNamespace } from '../../native/index.js';
import { startProgram } from '../../native/run-program.js';
import { PodNetworks, runBounded } from '../../network/pod-network.js';
import { dockerAttach, dockerExec } from './streams.js';
import { readExit } from './executor.js';
import { RUNTIME_VERSION } from '../../version.js';
import { cgroupDirsOfPid, forgetSlowFiles, readCgroupUsage, type CgroupDirs, type Cgroups } from '../../cgroups/index.js';
import type { DiskUsageWatcher } from '../../util/disk-usage.js';
import { readPodInterfaces } from '../../network/stats.js';

/** What the CRI layer hands the Docker containerizer besides the ContainerConfig (LaunchRequest.docker). */
export interface DockerLaunch {
  /** the image reference as the user gave it (containers; pods run the pause image) */
  image?: string;
  /**
   * The pre-launch hook, called once the image is in the Engine and before anything runs (the
   * seed's order: pull, hook, run). It sees the image id and may change env and labels here.
   */
  preLaunch?: (image: { ref: string; id: string }) => Promise<void>;
  /** CRI command (Entrypoint) and args (Cmd); empty: the image's */
  entrypoint: string[];
  cmd: string[];
  /** CRI envs, KEY=VALUE; the Engine merges the image's under them */
  env: string[];
  workingDir: string;
  /** "uid[:gid]" or "name[:gid]"; '' = the image's */
  user: string;
  groupAdd: string[];
  capAdd: string[];
  capDrop: string[];
  /** seccomp profile as JSON text (Docker's `seccomp=<json>`); undefined = unconfined */
  seccompProfile?: string;
  noNewPrivs: boolean;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** CRI devices: host path, container path, cgroup permissions */
  devices: { hostPath: string; containerPath: string; permissions: string }[];
  /** AppArmor profile name (Docker's `apparmor=<name>`); undefined: the Engine's default */
  apparmor?: string;
  /** Set by launch: the Engine's image id and the image's StopSignal. */
  resolved?: { imageId: string; stopSignal: string };
}

export const LABEL = {
  instance: 'io.cri-mesos.instance',
  id: 'io.cri-mesos.id',
  kind: 'io.cri-mesos.kind',
  runtimeDir: 'io.cri-mesos.runtime-dir',
  /** on a mode-A executor container: the docker id of the container it supervises */
  executorFor: 'io.cri-mesos.executor-for',
  labelPrefix: 'io.cri-mesos.label.',
  annotationPrefix: 'io.cri-mesos.annotation.',
} as const;

/** The pause image the daemon builds itself (docker import of the host's static busybox): nothing can be pulled here. */
export const PAUSE_IMAGE = { repo: 'cri-mesos/pause', tag: RUNTIME_VERSION };
export const PAUSE_BUSYBOX = '/bin/busybox';
const PAUSE_CMD = ['/bin/busybox', 'sh', '-c', "trap 'exit 0' TERM INT; while :; do /bin/busybox sleep 2147483647 & wait $!; done"];

type State = 'FETCHING' | 'RUNNING' | 'DESTROYING' | 'TERMINATED';

interface Entry {
  id: ContainerId;
  key: string;
  config: ContainerConfig;
  dockerId?: string;
  state: State;
  pid?: number;
  logPath: string;
  /** resolves once the container has ended (its exit.json written, or the Engine says so) */
  termination?: Promise<Termination>;
  exited?: Termination;
  children: Set<string>;
  /** wait()s on a created container that has not started: told when it ends or is destroyed */
  waiters?: ((t: Termination | undefined) => void)[];
  /** mode A: the docker id of its executor's container */
  executorContainer?: string;
  /** where its cgroup is (stats), found once it runs */
  cgroupDirs?: CgroupDirs;
  /** its overlay2 upper dir ('' when the Engine has none), once asked */
  upperDir?: string;
}

export interface DockerContainerizerOptions {
  dockerHost: string;
  runtimeDir: string;
  registries: RegistriesConfig;
  log: Logger;
  /** argv that runs the cri-mesos CLI (node + its flags + the entry script) */
  cli: string[];
  /**
   * Loads an image of cri-mesos' own store into the Engine (docker load), pulling it into the
   * store first (cri-mesos' puller, which honours every registry setting) when it is not there,
   * and returns the reference to run it by; undefined when it cannot be had that way.
   */
  fromStore?: (ref: string, engine: Engine, creds: Credentials | undefined) => Promise<string | undefined>;
  /**
   * The credentials for pulling `ref`: those its last PullImage carried (CredentialCache),
   * else the config's registry.auths for `host` (the endpoint pulled from).
   */
  credentials?: (ref: string, host: string) => Credentials | undefined;
  /** The CNI networks of docker pods on network POD (the Mesos containerizer's module, its own state dir). */
  network?: PodNetworks;
  /**
   * Executor mode A (--docker-mesos-image): each docker-executor runs in a docker container of
   * this image (the daemon's own), not as a forked subprocess. Undefined: mode B.
   */
  executorImage?: string;
  /** mode A: argv of the cri-mesos CLI inside executorImage (default: this node and the bundle, at the same paths) */
  executorEntry?: string[];
  /** The host's cgroup mounts: usage is read from each container's own cgroup (else the Engine's stats API). */
  cgroups?: Cgroups;
  /** Walks the containers' writable layers (shared with the Mesos containerizer's disk/du). */
  diskUsage?: DiskUsageWatcher;
}

export class DockerContainerizer implements Containerizer {
  readonly engine: Engine;
  private readonly entries = new Map<string, Entry>();
  /** Tells our containers from another daemon's on the same Engine: a hash of our runtime dir. */
  readonly instance: string;
  private pauseReady?: Promise<string>;
  /** Called when a recovered pod's CNI CHECK fails (the CRI layer marks it NOTREADY). */
  onProblem?: (id: ContainerId, problem: string) => void;
  /** Settles when recovery's background CHECKs and orphan DELs are done. */
  networkRecovered: Promise<void> = Promise.resolve();

  constructor(private readonly opts: DockerContainerizerOptions) {
    this.engine = new Engine(opts.dockerHost);
    this.instance = createHash('sha256').update(opts.runtimeDir).digest('hex').slice(0, 16);
  }

  private dockerName(id: ContainerId): string {
    return `cri-mesos-${idString(id)}`;
  }

  // ---- recover ---------------------------------------------------------------

  async recover(): Promise<RecoveryReport> {
    const report: RecoveryReport = { containers: [], protected: [], orphans: [], cleanup: Promise.resolve() };
    let found: Awaited<ReturnType<Engine['list']>>;
    try {
      found = await this.engine.list([`${LABEL.instance}=${this.instance}`]);
    } catch (err) {
      // No Engine: what it ran cannot be told, so none of it is touched; the CRI layer marks
      // the containers it has records of as unknown to every containerizer.
      this.opts.log.error('docker containerizer: the Engine does not answer; docker containers are left alone (UNKNOWN)', { error: String(err) });
      for (const pod of listDir(dockerContainersDir(this.opts.runtimeDir))) {
        report.protected.push({ value: pod });
        for (const ctr of listDir(nestedContainersDir(dockerContainerDir(this.opts.runtimeDir, { value: pod })))) report.protected.push({ value: ctr, parent: { value: pod } });
      }
      return report;
    }
    // Mode-A executors are containers of ours too: by the container they supervise.
    const executors = new Map<string, { Id: string; running: boolean }>();
    for (const s of found.filter((c) => c.Labels[LABEL.kind] === 'executor')) {
      const of = s.Labels[LABEL.executorFor];
      if (of) executors.set(of, { Id: s.Id, running: s.State === 'running' });
    }
    found = found.filter((c) => c.Labels[LABEL.kind] !== 'executor');
    // Pods first: their containers hang under them.
    const sorted = found.sort((a, b) => (a.Labels[LABEL.kind] === 'pod' ? -1 : 0) - (b.Labels[LABEL.kind] === 'pod' ? -1 : 0));
    for (const s of sorted) {
      const key = s.Labels[LABEL.id];
      if (!key) continue;
      const parts = key.split('.');
      const id: ContainerId = parts.length === 2 ? { value: parts[1]!, parent: { value: parts[0]! } } : { value: parts[0]! };
      const info = await this.engine.inspectContainer(s.Id);
      if (!info) continue;
      let config: ContainerConfig;
      let logPath = '';
      try {
        const saved = JSON.parse(readFileSync(runtimeFile(this.runtimeDirOf(info), 'config'), 'utf8')) as { config: ContainerConfig; logPath: string };
        config = saved.config;
        logPath = saved.logPath;
      } catch (err) {
        this.opts.log.warn('docker container without a readable checkpoint; left alone', { container: key, docker: s.Id, error: String(err) });
        report.protected.push(id);
        continue;
      }
      const started = rfc3339Nanos(info.State.StartedAt) !== '0';
      const state: State = info.State.Running ? 'RUNNING' : started || config.kind === 'pod' ? 'TERMINATED' : 'FETCHING';
      const e: Entry = { id, key, config, dockerId: s.Id, state, logPath, children: new Set(), ...(info.State.Running ? { pid: info.State.Pid } : {}) };
      this.entries.set(key, e);
      if (id.parent) this.entries.get(idString(id.parent))?.children.add(key);
      const executor = executors.get(s.Id);
      if (executor) {
        e.executorContainer = executor.Id;
        executors.delete(s.Id);
      }
      if (state === 'RUNNING' && config.kind === 'container' && !(await this.executorAlive(e))) {
        // Its executor is gone (killed with the daemon's session, or its container stopped): a new
        // one attaches to the running container, so its output reaches the log again and exit.json
        // gets written.
        this.opts.log.warn('docker containerizer: a running container has no executor; starting a new one', { container: key, mode: this.opts.executorImage ? 'A' : 'B' });
        try {
          await this.startExecutor(e);
        } catch (err) {
          this.opts.log.error('docker containerizer: the new executor did not start', { container: key, error: String(err) });
        }
      }
      // Its CNI state first: a pod that ended while we were down DELs it as it is watched.
      if (config.kind === 'pod') this.opts.network?.recover(key);
      if (state === 'RUNNING' || state === 'TERMINATED') this.watch(e);
      report.containers.push({ id, config, state, unverified: false });
      this.opts.log.info('docker containerizer: recovered', { container: key, state });
    }
    // Pods the Engine no longer has whose network is still set up: their dirs (and pinned
    // netns) go after the DEL, so the plugins can clean up inside it (bridge's ipMasq rules).
    const deleting = this.recoverNetworks(report);
    // Runtime dirs whose docker container the Engine no longer has (removed behind our back, or
    // a launch cut before the create): nothing to recover; the CRI layer reports their records.
    const keep = new Set([...this.entries.keys(), ...report.protected.map((id) => idString(id))]);
    for (const pod of listDir(dockerContainersDir(this.opts.runtimeDir))) {
      const podDir = dockerContainerDir(this.opts.runtimeDir, { value: pod });
      if (!keep.has(pod)) {
        report.orphans.push(podDir);
        if (deleting.has(pod)) continue;
        unpinNamespace(runtimeFile(podDir, 'netns'));
        rmSync(podDir, { recursive: true, force: true });
        continue;
      }
      for (const ctr of listDir(nestedContainersDir(podDir))) {
        if (keep.has(`${pod}.${ctr}`)) continue;
        const dir = dockerContainerDir(this.opts.runtimeDir, { value: ctr, parent: { value: pod } });
        rmSync(dir, { recursive: true, force: true });
        report.orphans.push(dir);
      }
    }
    // Executor containers whose container is gone: nothing left to supervise.
    for (const [of, x] of executors) {
      this.opts.log.warn('docker containerizer: removing an executor container whose container is gone', { executor: x.Id.slice(0, 12), of: of.slice(0, 12) });
      await this.engine.remove(x.Id).catch(() => undefined);
    }
    if (report.orphans.length) this.opts.log.warn('docker containerizer: removed runtime dirs the Engine has no container for', { dirs: report.orphans });
    return report;
  }

  /**
   * The CNI state of recovered pods is read back, running ones are CHECKed (in the background;
   * a failure is reported through onProblem); state of pods the Engine no longer has (removed
   * behind our back, a reboot) gets its DEL, so no IP leaks. A quarantined pod's is left alone.
   */
  private recoverNetworks(report: RecoveryReport): Set<string> {
    const net = this.opts.network;
    const deleting = new Set<string>();
    if (!net) return deleting;
    const tasks: (() => Promise<void>)[] = [];
    const protectedPods = new Set(report.protected.filter((id) => !id.parent).map((id) => id.value));
    for (const pod of net.onDisk()) {
      const e = this.entries.get(pod);
      if (!e) {
        if (protectedPods.has(pod)) continue;
        deleting.add(pod);
        const podDir = dockerContainerDir(this.opts.runtimeDir, { value: pod });
        tasks.push(async () => {
          await net.teardown(pod);
          unpinNamespace(runtimeFile(podDir, 'netns'));
          rmSync(podDir, { recursive: true, force: true });
        });
        continue;
      }
      const state = net.get(pod);
      if (state?.result && e.state === 'RUNNING') {
        tasks.push(async () => {
          const problem = await net.check(pod, state);
          if (problem) this.onProblem?.(e.id, problem);
        });
      }
    }
    this.networkRecovered = runBounded(tasks, 8);
    return deleting;
  }

  private runtimeDirOf(info: ContainerInspect): string {
    return info.Config.Labels?.[LABEL.runtimeDir] ?? '';
  }

  // ---- launch ----------------------------------------------------------------

  async launch(req: LaunchRequest): Promise<LaunchResult> {
    const config = req.config;
    const handler = req.runtimeHandler;
    if (!config.id.parent && handler !== 'docker') return 'NOT_SUPPORTED';
    const key = idString(config.id);
    if (this.entries.has(key)) throw failedPrecondition(`container ${key} is already launched`);
    const spec = req.docker;
    if (!spec) throw internal('docker containerizer: the launch has no docker spec');
    const e: Entry = { id: config.id, key, config, state: 'FETCHING', logPath: req.logPath ?? '', children: new Set() };
    if (config.id.parent) {
      const pod = this.entries.get(idString(config.id.parent));
      if (!pod?.dockerId || pod.state !== 'RUNNING') throw failedPrecondition(`pod ${config.id.parent.value} is not running`);
      pod.children.add(key);
    }
    this.entries.set(key, e);
    mkdirSync(config.runtimeDir, { recursive: true, mode: 0o711 });
    // The checkpoint first, as the Mesos containerizer writes its config.json.
    writeFileSync(runtimeFile(config.runtimeDir, 'config'), JSON.stringify({ config, logPath: e.logPath }));
    // The seed's order: the image into the Engine, then the pre-launch hook, then the run.
    const image = config.kind === 'pod' ? await this.pauseImage() : await this.pull(spec.image!);
    const img = await this.engine.inspectImage(image);
    spec.resolved = { imageId: img?.Id ?? image, stopSignal: img?.Config?.StopSignal ?? '' };
    if (spec.preLaunch) await spec.preLaunch({ ref: spec.image ?? image, id: spec.resolved.imageId });
    const body = this.createBody(e, spec, image);
    e.dockerId = await this.engine.create(this.dockerName(config.id), body);
    if (config.kind === 'pod') {
      await this.engine.start(e.dockerId);
      const info = await this.engine.inspectContainer(e.dockerId);
      e.pid = info?.State.Pid;
      e.state = 'RUNNING';
      this.watch(e);
      // CNI on the infra container's own netns (NetworkMode none: only lo), pinned first so
      // DEL finds it after the infra has gone. A failed ADD fails the launch; the CRI layer's
      // destroy and remove then DEL from the checkpoint (the half-way ADD is undone).
      if (this.podNetworked(config)) await this.addNetwork(e);
    } else {
      // The executor's control FIFO (ReopenContainerLog) exists before it starts.
      native().mkfifo(runtimeFile(config.runtimeDir, 'ctlFifo'), 0o600);
    }
    this.opts.log.info('docker containerizer: launched', { container: key, docker: e.dockerId.slice(0, 12), image });
    return 'SUCCESS';
  }

  /**
   * The image for a container, as Mesos' Docker::pull: the Engine's own copy if it has one;
   * else pulled through the Engine, from the host's mirrors first (tagged as the upstream name)
   * and then the host itself, with the CRI's or the config's credentials; else, when the Engine
   * cannot pull it (an insecure host the Engine reaches over TLS only, a registry it cannot
   * reach), through cri-mesos' own store (PullImage's copy, or a pull into it) and `docker load`.
   */
  private async pull(ref: string): Promise<string> {
    if (await this.engine.inspectImage(ref)) return ref;
    const errors: string[] = [];
    const { host, repo, tag } = splitRef(ref);
    const reg = this.opts.registries;
    const engineRegistries = await this.engine.registryConfig().catch(() => ({}) as EngineRegistryConfig);
    const attempt = async (endpoint: string, insecure: boolean, pullRepo: string): Promise<boolean> => {
      if (insecure && !engineInsecure(endpoint, engineRegistries)) {
        errors.push(`${pullRepo}: the Docker Engine reaches ${endpoint} over TLS only (start dockerd with --insecure-registry ${endpoint})`);
        return false;
      }
      const creds = this.opts.credentials?.(ref, endpoint);
      try {
        await this.engine.pull(pullRepo, tag, creds && engineAuth(creds, endpoint));
        this.opts.log.info('docker containerizer: image pulled through the Engine', { image: ref, from: `${pullRepo}:${tag}`, auth: creds ? 'yes' : 'no' });
        return true;
      } catch (err) {
        errors.push(`${pullRepo}:${tag}: ${(err as Error).message}`);
        return false;
      }
    };
    for (const mirror of reg.mirrors[host] ?? []) {
      const u = new URL(mirror);
      const path = host === 'docker.io' ? repo.replace(/^docker\.io\//, '') : repo.slice(host.length + 1);
      const prefix = u.pathname.replace(/^\/+|\/+$/g, '');
      const mref = `${u.host}/${prefix ? `${prefix}/` : ''}${path}`;
      if (await attempt(u.host, u.protocol === 'http:' || reg.insecure.includes(u.host), mref)) {
        await this.engine.tag(`${mref}:${tag}`, repo, tag);
        return ref;
      }
    }
    if ((!(reg.mirrors[host]?.length) || reg.fallbackToUpstream) && !unresolvable(host)) {
      if (await attempt(host, reg.insecure.includes(host), repo)) return ref;
    }
    if (this.opts.fromStore) {
      try {
        const loaded = await this.opts.fromStore(ref, this.engine, this.opts.credentials?.(ref, host));
        if (loaded) {
          this.opts.log.info('docker containerizer: image loaded into the Engine from the image store', { image: ref, as: loaded, ...(errors.length ? { enginePull: errors.join('; ') } : {}) });
          return loaded;
        }
      } catch (err) {
        errors.push(`through cri-mesos' image store: ${(err as Error).message}`);
      }
    }
    throw notFound(`image "${ref}" (config.image.image) could not be pulled through the Docker Engine: ${errors.join('; ')}`);
  }

  /** The pause image, imported once from a rootfs of the host's static busybox. */
  private pauseImage(): Promise<string> {
    const ref = `${PAUSE_IMAGE.repo}:${PAUSE_IMAGE.tag}`;
    this.pauseReady ??= (async () => {
      if (await this.engine.inspectImage(ref)) return ref;
      if (!existsSync(PAUSE_BUSYBOX)) throw failedPrecondition(`the docker pause image needs a static ${PAUSE_BUSYBOX} (Debian busybox-static)`);
      const pack = tar.pack();
      const chunks: Buffer[] = [];
      const done = (async () => {
        for await (const c of pack) chunks.push(c as Buffer);
      })();
      const bb = readFileSync(PAUSE_BUSYBOX);
      pack.entry({ name: 'bin', type: 'directory', mode: 0o755 });
      pack.entry({ name: 'bin/busybox', mode: 0o755, size: bb.length }, bb);
      pack.entry({ name: 'proc', type: 'directory', mode: 0o555 });
      pack.entry({ name: 'dev', type: 'directory', mode: 0o755 });
      pack.entry({ name: 'sys', type: 'directory', mode: 0o555 });
      pack.finalize();
      await done;
      await this.engine.importRootfs(Buffer.concat(chunks), PAUSE_IMAGE.repo, PAUSE_IMAGE.tag);
      this.opts.log.info('docker containerizer: pause image imported', { image: ref });
      return ref;
    })();
    this.pauseReady.catch(() => (this.pauseReady = undefined));
    return this.pauseReady;
  }

  private podNetworked(c: ContainerConfig): boolean {
    return c.kind === 'pod' && c.namespaces.network === 'POD' && !!this.opts.network;
  }

  private async addNetwork(e: Entry): Promise<void> {
    const net = this.opts.network!;
    if (!e.pid) throw unavailable(`the infra container of pod ${e.key} is not running`);
    const netns = runtimeFile(e.config.runtimeDir, 'netns');
    // The checkpoint before the pin and the ADD: whatever a crash leaves, teardown finds it.
    const state = net.begin(e.config, netns);
    if (!state) return;
    closeSync(openSync(netns, 'a', 0o444));
    native().mount(`/proc/${e.pid}/ns/net`, netns, null, MS.BIND, null);
    await net.add(e.key, state);
  }

  /** DEL (from the checkpoint: also after a restart), then the pinned netns goes. */
  private async removeNetwork(e: Entry): Promise<void> {
    if (e.config.kind !== 'pod' || !this.opts.network) return;
    await this.opts.network.teardown(e.key);
    unpinNamespace(runtimeFile(e.config.runtimeDir, 'netns'));
  }

  /** Docker's create body: Mesos' Docker::RunOptions::create plus what CRI adds. */
  private createBody(e: Entry, spec: DockerLaunch, image: string): Record<string, unknown> {
    const c = e.config;
    const labels: Record<string, string> = {
      [LABEL.instance]: this.instance,
      [LABEL.id]: e.key,
      [LABEL.kind]: c.kind,
      [LABEL.runtimeDir]: c.runtimeDir,
    };
    for (const [k, v] of Object.entries(spec.labels)) labels[LABEL.labelPrefix + k] = v;
    for (const [k, v] of Object.entries(spec.annotations)) labels[LABEL.annotationPrefix + k] = v;
    const host: Record<string, unknown> = { ...resourceFields(c.resources), ...(c.cgroupParent ? { CgroupParent: c.cgroupParent } : {}) };
    if (c.kind === 'pod') {
      const networked = this.podNetworked(c);
      // POD: a netns of its own with only lo, which CNI sets up (as cri-dockerd does). The
      // containers join it (container:<infra>) and so get its hostname, hosts and resolv.conf.
      host.NetworkMode = networked ? 'none' : 'host';
      if (networked && c.dns) {
        if (c.dns.servers.length) host.Dns = c.dns.servers;
        if (c.dns.searches.length) host.DnsSearch = c.dns.searches;
        if (c.dns.options.length) host.DnsOptions = c.dns.options;
      }
      host.IpcMode = c.namespaces.ipc === 'NODE' ? 'host' : 'shareable';
      host.PidMode = c.namespaces.pid === 'NODE' ? 'host' : '';
      if (c.sysctls && Object.keys(c.sysctls).length) host.Sysctls = c.sysctls;
      return {
        Image: image,
        Cmd: PAUSE_CMD,
        Entrypoint: [],
        Labels: labels,
        HostConfig: host,
        AttachStdout: false,
        AttachStderr: false,
        ...(networked && c.hostname ? { Hostname: c.hostname } : {}),
      };
    }
    const pod = this.entries.get(idString(c.id.parent!))!;
    const infra = `container:${pod.dockerId}`;
    host.NetworkMode = infra;
    host.IpcMode = c.namespaces.ipc === 'NODE' ? 'host' : infra;
    host.PidMode = c.namespaces.pid === 'NODE' ? 'host' : c.namespaces.pid === 'POD' ? infra : '';
    if (c.namespaces.pid === 'TARGET') throw unimplemented('namespace_options.pid TARGET is not implemented for docker pods');
    host.Privileged = c.privileged ?? false;
    host.ReadonlyRootfs = c.readonlyRootfs ?? false;
    if (spec.capAdd.length) host.CapAdd = spec.capAdd;
    if (spec.capDrop.length) host.CapDrop = spec.capDrop;
    if (spec.groupAdd.length) host.GroupAdd = spec.groupAdd;
    const secopts: string[] = [];
    if (!c.privileged) secopts.push(spec.seccompProfile !== undefined ? `seccomp=${spec.seccompProfile}` : 'seccomp=unconfined');
    if (spec.noNewPrivs) secopts.push('no-new-privileges');
    if (spec.apparmor !== undefined) secopts.push(`apparmor=${spec.apparmor}`);
    host.SecurityOpt = secopts;
    if (c.sysctls && Object.keys(c.sysctls).length) host.Sysctls = c.sysctls;
    if (c.maskedPaths) host.MaskedPaths = c.maskedPaths;
    if (c.readonlyPaths) host.ReadonlyPaths = c.readonlyPaths;
    if (c.resources.oomScoreAdj !== undefined) host.OomScoreAdj = c.resources.oomScoreAdj;
    host.Devices = spec.devices.map((d) => ({ PathOnHost: d.hostPath, PathInContainer: d.containerPath, CgroupPermissions: d.permissions || 'rwm' }));
    host.Mounts = (c.mounts ?? []).map((m) => ({
      Type: 'bind',
      Source: m.hostPath,
      Target: m.containerPath,
      ReadOnly: m.readonly,
      BindOptions: { Propagation: m.propagation === 'PROPAGATION_BIDIRECTIONAL' ? 'rshared' : m.propagation === 'PROPAGATION_HOST_TO_CONTAINER' ? 'rslave' : 'rprivate' },
    }));
    // The executor writes the CRI log; the Engine keeps none of its own.
    host.LogConfig = { Type: 'none', Config: {} };
    return {
      Image: image,
      ...(spec.entrypoint.length ? { Entrypoint: spec.entrypoint } : {}),
      ...(spec.cmd.length ? { Cmd: spec.cmd } : {}),
      Env: spec.env,
      WorkingDir: spec.workingDir,
      User: spec.user,
      Labels: labels,
      Tty: c.tty ?? false,
      // CRI stdin: held open for Attach; stdin_once closes it when the first attach ends (Docker's StdinOnce).
      OpenStdin: c.stdin ?? false,
      StdinOnce: c.stdinOnce ?? false,
      AttachStdout: true,
      AttachStderr: true,
      HostConfig: host,
    };
  }

  // ---- start, exit, destroy --------------------------------------------------

  async start(id: ContainerId): Promise<void> {
    const e = this.must(id);
    if (e.state !== 'FETCHING' || !e.dockerId) throw failedPrecondition(`container ${id.value} is ${e.state}, not CREATED`);
    const dir = e.config.runtimeDir;
    const { exited } = await this.startExecutor(e);
    const deadline = Date.now() + 30_000;
    let done: number | null | undefined;
    void exited.then((c) => (done = c));
    while (!existsSync(runtimeFile(dir, 'started'))) {
      if (done !== undefined || Date.now() > deadline) {
        const tail = readTail(runtimeFile(dir, 'executorLog'));
        throw unavailable(`docker-executor did not start container ${id.value}${done !== undefined ? ` (it exited with ${done})` : ''}: ${tail}`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const info = await this.engine.inspectContainer(e.dockerId);
    e.pid = info?.State.Running ? info.State.Pid : undefined;
    e.state = 'RUNNING';
    this.watch(e);
  }

  /** Starts the container's docker-executor (mode A or B); resolves with a promise of its exit. */
  private async startExecutor(e: Entry): Promise<{ exited: Promise<number | null> }> {
    if (this.opts.executorImage) return this.startExecutorContainer(e, this.opts.executorImage);
    return this.spawnExecutor(e);
  }

  private executorName(e: Entry): string {
    return `${this.dockerName(e.id)}-executor`;
  }

  /**
   * Mode A: `cri-mesos docker-executor` in a docker container of the daemon's image (Mesos'
   * --docker_mesos_image), with the Engine's socket, the container's runtime dir and its log dir
   * bound at the same paths, so it does what a mode-B executor does. It carries our instance
   * label and the id of the container it supervises, by which recovery finds it.
   */
  private async startExecutorContainer(e: Entry, image: string): Promise<{ exited: Promise<number | null> }> {
    const dir = e.config.runtimeDir;
    const name = this.executorName(e);
    // A dead executor's container (replaced on recovery) still holds the name.
    await this.engine.remove(name);
    const sock = socketPath(this.opts.dockerHost);
    const binds = [sock, dir];
    if (e.logPath) {
      mkdirSync(dirname(e.logPath), { recursive: true });
      binds.push(dirname(e.logPath));
    }
    const entry = this.opts.executorEntry ?? [process.execPath, join(projectRoot(), BUNDLE_FILE)];
    const body = {
      Image: image,
      Entrypoint: entry,
      Cmd: ['docker-executor', '--docker-host', this.opts.dockerHost, '--container', e.dockerId!, '--runtime-dir', dir, '--log-path', e.logPath, '--executor-log', runtimeFile(dir, 'executorLog')],
      Labels: { [LABEL.instance]: this.instance, [LABEL.kind]: 'executor', [LABEL.id]: e.key, [LABEL.executorFor]: e.dockerId! },
      AttachStdout: false,
      AttachStderr: false,
      HostConfig: {
        // It needs the Engine's socket only.
        NetworkMode: 'none',
        Mounts: binds.map((p) => ({ Type: 'bind', Source: p, Target: p, ReadOnly: false })),
      },
    };
    let id: string;
    try {
      id = await this.engine.create(name, body);
      e.executorContainer = id;
      await this.engine.start(id);
    } catch (err) {
      throw unavailable(`docker-executor container (image ${image}, executor mode A) did not start for container ${e.id.value}: ${(err as Error).message}`);
    }
    this.opts.log.info('docker containerizer: executor container started', { container: e.key, executor: id.slice(0, 12), image });
    return { exited: this.engine.wait(id).catch(() => null) };
  }

  /**
   * Mode B: `cri-mesos docker-executor` for the container, in a session of its own (a daemon
   * restart, or its process group's signals, leave it running), started through the addon's spawn
   * (startProgram): the daemon is not forked. Resolves once it runs, with a
   * promise of its exit status (null: killed by a signal) in an object (a promise would be adopted).
   */
  private async spawnExecutor(e: Entry): Promise<{ exited: Promise<number | null> }> {
    const dir = e.config.runtimeDir;
    const logFd = openSync(runtimeFile(dir, 'executorLog'), 'a');
    let started;
    try {
      const [cmd, ...args] = this.opts.cli;
      started = await startProgram({
        file: cmd!,
        argv: [cmd!, ...args, 'docker-executor', '--docker-host', this.opts.dockerHost, '--container', e.dockerId!, '--runtime-dir', dir, '--log-path', e.logPath],
        env: process.env,
        stdio: [-1, logFd, logFd],
      });
    } catch (err) {
      throw unavailable(`docker-executor did not start for container ${e.id.value}: ${(err as Error).message}`);
    } finally {
      closeSync(logFd);
    }
    return {
      exited: started.exited.then(
        (x) => (x.signal !== null ? null : x.exitCode),
        () => null,
      ),
    };
  }

  /** How the container ends: the Engine's wait, then the executor's exit.json (its logs are flushed then). */
  private watch(e: Entry): void {
    if (e.termination) return;
    e.termination = (async () => {
      // The long poll can be cut (the Engine restarting, a reset connection): asked again until
      // the Engine says the container is not running, or that it is gone.
      for (let attempt = 0; ; attempt++) {
        try {
          await this.engine.wait(e.dockerId!);
          break;
        } catch (err) {
          if (err instanceof EngineError && err.status === 404) break;
          const info = await this.engine.inspectContainer(e.dockerId!).catch(() => null);
          if (info === undefined || (info && !info.State.Running)) break;
          if (attempt % 20 === 0) this.opts.log.warn('docker containerizer: waiting for a container; asking the Engine again', { container: e.key, error: String(err) });
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      // A pod's network goes with its infra container (Mesos' cleanup): DEL from the checkpoint.
      // A failure is logged and kept; RemovePodSandbox tries again.
      if (e.config.kind === 'pod' && this.opts.network) await this.opts.network.teardown(e.key).catch(() => undefined);
      let exit = e.config.kind === 'container' ? readExit(e.config.runtimeDir) : undefined;
      for (let i = 0; !exit && e.config.kind === 'container' && i < 100 && (await this.executorAlive(e)); i++) {
        await new Promise((r) => setTimeout(r, 50));
        exit = readExit(e.config.runtimeDir);
      }
      let t: Termination;
      if (exit) t = { exitCode: exit.exitCode, finishedAt: exit.finishedAt, oomKilled: exit.oomKilled, message: exit.message };
      else {
        const info = await this.engine.inspectContainer(e.dockerId!).catch(() => undefined);
        t = info
          ? { exitCode: info.State.ExitCode, finishedAt: rfc3339Nanos(info.State.FinishedAt), oomKilled: info.State.OOMKilled, message: info.State.Error }
          : { exitCode: 137, finishedAt: (BigInt(Date.now()) * 1_000_000n).toString(), oomKilled: false, message: 'the docker container is gone' };
      }
      if (!exit && e.config.kind === 'container' && e.state !== 'FETCHING') {
        this.opts.log.warn('docker container ended without its executor writing exit.json; its status is the Engine\'s', { container: e.key });
      }
      e.exited = t;
      e.state = 'TERMINATED';
      e.pid = undefined;
      for (const w of e.waiters?.splice(0) ?? []) w(t);
      this.opts.log.info('container state', { container: e.key, state: 'TERMINATED', exitCode: t.exitCode, oomKilled: t.oomKilled });
      return t;
    })();
    e.termination.catch((err) => this.opts.log.error('docker containerizer: waiting for a container failed', { container: e.key, error: String(err) }));
  }

  private async executorAlive(e: Entry): Promise<boolean> {
    if (e.executorContainer) {
      const info = await this.engine.inspectContainer(e.executorContainer).catch(() => undefined);
      return info?.State.Running ?? false;
    }
    try {
      const pid = Number(readFileSync(runtimeFile(e.config.runtimeDir, 'executorPid'), 'utf8'));
      if (!(pid > 0)) return false;
      // A zombie (its new parent has not reaped it yet) is dead, and a reused pid is not ours.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'Z' || state === 'X') return false;
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('docker-executor');
    } catch {
      return false;
    }
  }

  async kill(id: ContainerId, signal: number): Promise<boolean> {
    const e = this.entries.get(idString(id));
    if (!e || e.state === 'TERMINATED' || !e.dockerId) return false;
    if (e.state === 'FETCHING') {
      await this.destroy(id);
      return true;
    }
    await this.engine.kill(e.dockerId, signal);
    return true;
  }

  async wait(id: ContainerId): Promise<Termination | undefined> {
    const e = this.entries.get(idString(id));
    if (!e) return undefined;
    if (e.exited) return e.exited;
    if (e.termination) return e.termination;
    // Created, not started: it ends when it has run, or when destroyed.
    return new Promise((resolve) => (e.waiters ??= []).push(resolve));
  }

  async destroy(id: ContainerId): Promise<Termination | undefined> {
    const e = this.entries.get(idString(id));
    if (!e) return undefined;
    if (e.exited) return e.exited;
    for (const child of [...e.children]) {
      const c = this.entries.get(child);
      if (c) await this.destroy(c.id);
    }
    if (e.state === 'FETCHING' || !e.dockerId) {
      // Never started: Mesos reports a destroyed container as killed.
      e.exited = { exitCode: 137, finishedAt: (BigInt(Date.now()) * 1_000_000n).toString(), oomKilled: false, message: 'destroyed before it started' };
      e.state = 'TERMINATED';
      for (const w of e.waiters?.splice(0) ?? []) w(e.exited);
      return e.exited;
    }
    e.state = 'DESTROYING';
    await this.engine.kill(e.dockerId, 9);
    return e.termination;
  }

  async remove(id: ContainerId): Promise<void> {
    const key = idString(id);
    const e = this.entries.get(key);
    if (!e) return;
    if (e.state !== 'TERMINATED' && e.state !== 'FETCHING') throw failedPrecondition(`container ${id.value} has not terminated`);
    for (const child of [...e.children]) {
      const c = this.entries.get(child);
      if (c) await this.remove(c.id);
    }
    // A DEL that failed at stop is tried again: the IP must not outlive the pod.
    await this.removeNetwork(e);
    if (e.dockerId) await this.engine.remove(e.dockerId);
    if (e.executorContainer) await this.engine.remove(e.executorContainer);
    this.entries.delete(key);
    this.opts.diskUsage?.unwatch(key);
    for (const w of e.waiters?.splice(0) ?? []) w(undefined);
    if (id.parent) this.entries.get(idString(id.parent))?.children.delete(key);
    rmSync(e.config.runtimeDir, { recursive: true, force: true });
  }

  // ---- the rest --------------------------------------------------------------

  async update(id: ContainerId, resources: ResourceLimits): Promise<void> {
    const e = this.must(id);
    if (!e.dockerId) throw failedPrecondition(`container ${id.value} has no docker container`);
    if (resources.unified && Object.keys(resources.unified).length) {
      throw invalidArgument('linux.unified: cgroup2 keys are not applied to docker containers');
    }
    await this.engine.update(e.dockerId, resourceFields(resources));
    e.config = { ...e.config, resources };
    // Its limits, read back by usage(), are kept a while (cgroups/stats.ts): not past a write.
    const dirs = e.cgroupDirs;
    if (dirs?.version === 2) forgetSlowFiles(dirs.dir);
    else if (dirs) for (const d of [dirs.cpu, dirs.cpuacct, dirs.memory, dirs.pids]) if (d) forgetSlowFiles(d);
  }

  async status(id: ContainerId): Promise<ContainerStatus> {
    const e = this.must(id);
    // NODE pods run on the node's network: no address of their own; POD pods have CNI's.
    if (e.config.kind !== 'pod' || !this.opts.network) return { ips: [] };
    const st = this.opts.network.status(e.key);
    return { ips: st.ips ?? [], ...(st.networkProblem ? { networkProblem: st.networkProblem } : {}) };
  }

  /**
   * A container's usage is read from its own cgroup (found through /proc/<pid>/cgroup of its init,
   * under the Engine's cgroup parent) with the same readers as the Mesos isolators', not through
   * the Engine's stats API (which takes a second per call); its writable layer is the Engine's
   * overlay2 upper dir, walked by the shared DiskUsageWatcher. A docker pod has no cgroup of its
   * own (Docker cannot nest): its counters are the infra container's plus its containers',
   * summed, and it has no pressure (averages do not add up). Its interfaces are read through the
   * infra container's /proc/<pid>/net/dev.
   */
  async usage(id: ContainerId, detail: UsageDetail = 'full'): Promise<ResourceStatistics> {
    const e = this.must(id);
    if (e.config.kind === 'pod') {
      const parts = await Promise.all([e, ...[...e.children].map((k) => this.entries.get(k)).filter((c): c is Entry => !!c)].map((c) => this.usageOf(c, detail).catch(() => undefined)));
      const sum: ResourceStatistics = { timestamp: Date.now() / 1000 };
      for (const p of parts) {
        if (!p) continue;
        for (const [k, v] of Object.entries(p) as [keyof ResourceStatistics, unknown][]) {
          if (k === 'timestamp' || k === 'memLimitBytes' || k === 'memSwapLimitBytes' || typeof v !== 'number' || k.startsWith('disk')) continue;
          (sum as unknown as Record<string, number>)[k] = ((sum as unknown as Record<string, number>)[k] ?? 0) + v;
        }
      }
      if (parts[0]?.memLimitBytes !== undefined) sum.memLimitBytes = parts[0].memLimitBytes;
      if (detail === 'cpu') return sum;
      if (e.pid !== undefined && e.state === 'RUNNING' && e.config.namespaces.network === 'POD') {
        const ifaces = readPodInterfaces(e.pid);
        if (ifaces) sum.network = ifaces;
      }
      return sum;
    }
    return this.usageOf(e, detail);
  }

  private async usageOf(e: Entry, detail: UsageDetail): Promise<ResourceStatistics> {
    if (!e.dockerId || e.state !== 'RUNNING' || e.pid === undefined) return { timestamp: Date.now() / 1000 };
    const cgroups = this.opts.cgroups;
    e.cgroupDirs ??= cgroups ? cgroupDirsOfPid(e.pid, cgroups) : undefined;
    const timestamp = Date.now() / 1000;
    const out: ResourceStatistics = e.cgroupDirs ? { ...readCgroupUsage(e.cgroupDirs, detail === 'cpu'), timestamp } : await this.engineUsage(e.dockerId);
    if (e.config.kind === 'container' && detail === 'full') Object.assign(out, await this.writableLayer(e));
    return out;
  }

  /** The writable layer: the Engine's upper dir (overlay2), registered with the watcher once; its last walk. */
  private async writableLayer(e: Entry): Promise<Partial<ResourceStatistics>> {
    const watcher = this.opts.diskUsage;
    if (!watcher || !e.dockerId) return {};
    if (e.upperDir === undefined) {
      const info = await this.engine.inspectContainer(e.dockerId).catch(() => undefined);
      const upper = info?.GraphDriver?.Name === 'overlay2' ? info.GraphDriver.Data?.UpperDir : undefined;
      e.upperDir = upper ?? '';
      if (upper) watcher.watch(e.key, upper);
    }
    const u = e.upperDir ? watcher.get(e.key) : undefined;
    // <data-root>/overlay2/<layer>/diff: the overlay2 dir is on the filesystem that holds them all.
    return u ? { diskUsedBytes: u.bytes, diskUsedInodes: u.inodes, diskSampledAt: u.at / 1000, diskFilesystem: dirname(dirname(e.upperDir!)) } : {};
  }

  /** Where its cgroup cannot be found (no cgroups given): the Engine's stats (cgroup v1 fields). */
  private async engineUsage(dockerId: string): Promise<ResourceStatistics> {
    const s = await this.engine.stats(dockerId);
    const mem = s.memory_stats?.stats ?? {};
    const cpu = s.cpu_stats?.cpu_usage;
    const usage = s.memory_stats?.usage ?? 0;
    const inactive = mem.total_inactive_file ?? mem.inactive_file ?? 0;
    return {
      timestamp: Date.now() / 1000,
      ...(cpu?.total_usage !== undefined ? { cpuUsageNanos: cpu.total_usage } : {}),
      ...(cpu?.usage_in_usermode !== undefined ? { cpusUserTimeSecs: cpu.usage_in_usermode / 1e9 } : {}),
      ...(cpu?.usage_in_kernelmode !== undefined ? { cpusSystemTimeSecs: cpu.usage_in_kernelmode / 1e9 } : {}),
      memTotalBytes: usage,
      memRssBytes: mem.total_rss ?? mem.rss ?? mem.anon ?? 0,
      memCacheBytes: mem.total_cache ?? mem.cache ?? mem.file ?? 0,
      memInactiveFileBytes: inactive,
      ...(s.memory_stats?.limit !== undefined ? { memLimitBytes: s.memory_stats.limit } : {}),
      memPageFaults: mem.total_pgfault ?? mem.pgfault ?? 0,
      memMajorPageFaults: mem.total_pgmajfault ?? mem.pgmajfault ?? 0,
      ...(s.pids_stats?.current !== undefined ? { processes: s.pids_stats.current } : {}),
    };
  }

  /** The Engine's exec; a timeout SIGKILLs the exec's process (its host pid from the exec's inspect). */
  async execSync(id: ContainerId, argv: string[], timeoutMs: number): Promise<ExecResult> {
    const e = this.must(id);
    if (!e.dockerId || e.state !== 'RUNNING') throw failedPrecondition(`container ${id.value} is not running`);
    const created = await this.engine.call<{ Id: string }>('POST', `/containers/${e.dockerId}/exec`, {
      body: { Cmd: argv, AttachStdout: true, AttachStderr: true, AttachStdin: false, Tty: false },
    });
    const execId = created.body.Id;
    const sock = await this.engine.hijack(`/exec/${execId}/start`, { Detach: false, Tty: false });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const demux = new Demux((s, d) => (s === 2 ? err : out).push(Buffer.from(d)));
    let timedOut = false;
    const ended = new Promise<void>((resolve) => {
      sock.on('data', (c: Buffer) => demux.push(c));
      sock.on('end', resolve);
      sock.on('close', resolve);
      sock.on('error', () => resolve());
    });
    let timer: NodeJS.Timeout | undefined;
    if (timeoutMs > 0) {
      timer = setTimeout(() => {
        timedOut = true;
        void this.engine
          .call<{ Pid: number }>('GET', `/exec/${execId}/json`)
          .then((r) => r.body.Pid > 0 && process.kill(r.body.Pid, 'SIGKILL'))
          .catch(() => undefined)
          .finally(() => sock.destroy());
      }, timeoutMs);
    }
    await ended;
    clearTimeout(timer);
    let exitCode = -1;
    for (let i = 0; i < 50; i++) {
      const r = await this.engine.call<{ Running: boolean; ExitCode: number | null }>('GET', `/exec/${execId}/json`);
      if (!r.body.Running && r.body.ExitCode !== null) {
        exitCode = r.body.ExitCode;
        break;
      }
      await new Promise((res) => setTimeout(res, 20));
    }
    return { stdout: Buffer.concat(out), stderr: Buffer.concat(err), exitCode, timedOut };
  }

  async exec(id: ContainerId, argv: string[], _process: ProcessSpec, io: ExecIO): Promise<ExecHandle> {
    const e = this.must(id);
    if (!e.dockerId || e.state !== 'RUNNING') throw failedPrecondition(`container ${id.value} is not running`);
    return dockerExec(this.engine, e.dockerId, argv, io);
  }

  async attach(id: ContainerId): Promise<AttachHandle> {
    const e = this.must(id);
    if (!e.dockerId || e.state !== 'RUNNING') throw failedPrecondition(`container ${id.value} is not running`);
    const exited = (e.termination ?? Promise.resolve(undefined)).then((t) => t?.exitCode ?? null).catch(() => null);
    return dockerAttach(this.engine, e.dockerId, { tty: e.config.tty ?? false, stdin: e.config.stdin ?? false }, exited);
  }

  /** A connection to localhost:<port> in the infra container's network namespace (the pod's). */
  async portForward(podId: ContainerId, port: number): Promise<Socket> {
    const e = this.must(podId);
    if (e.config.kind !== 'pod') throw invalidArgument(`${podId.value} is not a pod sandbox`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalidArgument(`port ${port} is not a TCP port (1-65535)`);
    if (e.state !== 'RUNNING' || !e.pid) throw failedPrecondition(`pod sandbox ${podId.value} is not running`);
    let fd: number;
    try {
      fd = await native().connectInNetns(`/proc/${e.pid}/ns/net`, port);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && (err as NodeJS.ErrnoException).syscall === 'open') {
        throw failedPrecondition(`pod sandbox ${podId.value} is not running: its network namespace is gone`, err);
      }
      throw withContext(err, `port-forward to port ${port} in pod sandbox ${podId.value}`);
    }
    return new Socket({ fd, readable: true, writable: true });
  }

  async control(id: ContainerId, line: string): Promise<void> {
    const e = this.must(id);
    const fifo = runtimeFile(e.config.runtimeDir, 'ctlFifo');
    if (!(await this.executorAlive(e))) throw failedPrecondition(`container ${id.value} has no running docker-executor`);
    // O_WRONLY|O_NONBLOCK: the executor holds the read end open (O_RDWR), so this cannot block.
    const fs = await import('node:fs');
    const fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    try {
      fs.writeSync(fd, `${line}\n`);
    } finally {
      fs.closeSync(fd);
    }
  }

  containers(): ContainerId[] {
    return [...this.entries.values()].map((e) => e.id);
  }

  pid(id: ContainerId): number | undefined {
    const e = this.entries.get(idString(id));
    return e?.state === 'RUNNING' ? e.pid : undefined;
  }

  processPid(id: ContainerId): number | undefined {
    return this.pid(id);
  }

  isRunning(id: ContainerId): boolean {
    return this.entries.get(idString(id))?.state === 'RUNNING';
  }

  /** Containers by kind and state (the metrics). Executors are not counted: mode A's live in the Engine, which a scrape does not ask. */
  census(): Census {
    const states = new Map<string, { kind: 'pod' | 'container'; state: string; count: number }>();
    for (const e of this.entries.values()) {
      const kind = e.config.kind === 'container' ? 'container' : 'pod';
      const s = states.get(`${kind}/${e.state}`);
      if (s) s.count++;
      else states.set(`${kind}/${e.state}`, { kind, state: e.state, count: 1 });
    }
    return { states: [...states.values()] };
  }

  private must(id: ContainerId): Entry {
    const e = this.entries.get(idString(id));
    if (!e) throw notFound(`container ${id.value} is unknown to the docker containerizer`);
    return e;
  }
}

/** Docker's HostConfig resource fields from the CRI limits (Mesos maps requests; CRI sends the kernel's values). */
export function resourceFields(r: ResourceLimits): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.cpuShares !== undefined) out.CpuShares = Math.max(2, r.cpuShares);
  if (r.cpuPeriod !== undefined) out.CpuPeriod = r.cpuPeriod;
  if (r.cpuQuota !== undefined && r.cpuQuota > 0) out.CpuQuota = Math.max(1000, r.cpuQuota);
  if (r.memoryLimitBytes !== undefined) out.Memory = r.memoryLimitBytes;
  if (r.memorySwapLimitBytes !== undefined) out.MemorySwap = r.memorySwapLimitBytes;
  if (r.pidsLimit !== undefined) out.PidsLimit = r.pidsLimit;
  if (r.cpusetCpus) out.CpusetCpus = r.cpusetCpus;
  if (r.cpusetMems) out.CpusetMems = r.cpusetMems;
  return out;
}

/** "host/repo:tag" → the registry host (docker.io when none), the repository and the tag (digests stay in the repo part). */
export function splitRef(ref: string): { host: string; repo: string; tag: string } {
  let repo = ref;
  let tag = 'latest';
  const at = ref.indexOf('@');
  if (at >= 0) {
    repo = ref.slice(0, at);
    tag = ref.slice(at + 1);
  } else {
    const colon = ref.lastIndexOf(':');
    if (colon > ref.lastIndexOf('/')) {
      repo = ref.slice(0, colon);
      tag = ref.slice(colon + 1);
    }
  }
  const first = repo.split('/')[0]!;
  const host = repo.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : 'docker.io';
  return { host, repo, tag };
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function readTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return '(no executor log)';
  }
}

/** The Engine's AuthConfig for credentials in the CRI's shape ("auth" is decoded: the Engine wants the parts). */
export function engineAuth(c: Credentials, serverAddress: string): EngineAuth {
  let { username, password } = c;
  if (c.auth && !username) {
    const dec = Buffer.from(c.auth, 'base64').toString('utf8');
    const i = dec.indexOf(':');
    if (i > 0) [username, password] = [dec.slice(0, i), dec.slice(i + 1)];
  }
  return {
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
    serveraddress: c.serverAddress || serverAddress,
    ...(c.identityToken ? { identitytoken: c.identityToken } : {}),
    ...(c.registryToken ? { registrytoken: c.registryToken } : {}),
  };
}

/**
 * Whether the Engine pulls from `host` over plain HTTP (or TLS unverified): its --insecure-registry
 * hosts (IndexConfigs Secure false) and CIDRs (127.0.0.0/8 always). Only literal IPs and
 * localhost are matched against the CIDRs: a name is not resolved here.
 */
export function engineInsecure(host: string, rc: EngineRegistryConfig): boolean {
  const idx = rc.IndexConfigs?.[host];
  if (idx) return idx.Secure === false;
  let name = host.replace(/:\d+$/, '');
  if (name.startsWith('[')) name = name.slice(1, -1);
  if (name === 'localhost') name = '127.0.0.1';
  return (rc.InsecureRegistryCIDRs ?? []).some((cidr) => inCidr(name, cidr));
}

function inCidr(ip: string, cidr: string): boolean {
  const [net, bits] = cidr.split('/');
  const a = ipv4(ip);
  const b = ipv4(net ?? '');
  const n = Number(bits);
  if (a === undefined || b === undefined || !(n >= 0 && n <= 32)) return ip === net;
  const mask = n === 0 ? 0 : (~0 << (32 - n)) >>> 0;
  return ((a & mask) >>> 0) === ((b & mask) >>> 0);
}

function ipv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const p = m.slice(1).map(Number);
  if (p.some((x) => x > 255)) return undefined;
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

/** Names no resolver answers (RFC 6761 .test, .invalid, .example, .localhost other than localhost): never asked for. */
function unresolvable(host: string): boolean {
  const name = host.replace(/:\d+$/, '').toLowerCase();
  return /\.(test|invalid|example|localhost)$/.test(name);
}

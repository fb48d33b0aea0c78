// Starts a real cri-mesos daemon (a child process) on a temp socket with temp
// work/runtime dirs and its own cgroup root, and talks gRPC to it as kubelet
// does. teardown() removes everything it made, also after a failed test.
// No ava in here (the hooks are in suite.ts), so scripts outside ava such as
// the benchmark (hack/bench/main.ts) use it too.
import * as grpc from '@grpc/grpc-js';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { projectRoot } from '../../src/util/paths.js';
import { criClientConstructors } from '../../src/cri/service-definitions.js';
import { buildBusyboxImages, TEST_TAGS } from '../../hack/build-test-images.js';
import { ImageStore } from '../../src/images/store.js';
import { importImage } from '../../src/images/import.js';
import { Cgroups } from '../../src/cgroups/index.js';
import { containerDir, runtimeFile } from '../../src/paths.js';
import { launchHelperPath, MNT_DETACH, native } from '../../src/native/index.js';

export const BUSYBOX = TEST_TAGS.oci;

type Unary = (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;
const IMAGE_RPCS = new Set(['ListImages', 'ImageStatus', 'PullImage', 'RemoveImage', 'ImageFsInfo']);

type ServiceClient = new (addr: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => grpc.Client & Record<string, Unary>;
/**
 * The CRI's client constructors, from the daemon's own method definitions and conversions
 * (src/cri/service-definitions.ts), built once: parsing the proto takes tens of ms of CPU, and
 * TestDaemon.launch makes a client every 50 ms while a stale socket file refuses connections
 * (after a kill -9), which held up everything else in the process, such as the benchmark's
 * restart timings.
 */
export function criClients(): { RuntimeService: ServiceClient; ImageService: ServiceClient } {
  return criClientConstructors() as unknown as { RuntimeService: ServiceClient; ImageService: ServiceClient };
}

/** A RuntimeService client for GetContainerEvents, the one server-streaming RPC. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function eventsClient(socket: string): grpc.Client & { GetContainerEvents: (req: object) => grpc.ClientReadableStream<any> } {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return new (criClients().RuntimeService)(`unix://${socket}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { GetContainerEvents: (req: object) => grpc.ClientReadableStream<any> };
}

export class CriClient {
  private readonly runtime: grpc.Client & Record<string, Unary>;
  private readonly image: grpc.Client & Record<string, Unary>;

  /** options: grpc-js channel options, e.g. grpc.default_authority */
  constructor(socket: string, options: grpc.ChannelOptions = {}) {
    const { RuntimeService, ImageService } = criClients();
    this.runtime = new RuntimeService(`unix://${socket}`, grpc.credentials.createInsecure(), options);
    this.image = new ImageService(`unix://${socket}`, grpc.credentials.createInsecure(), options);
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  call<T = any>(method: string, req: object = {}, timeoutMs = 60_000): Promise<T> {
    const client = IMAGE_RPCS.has(method) ? this.image : this.runtime;
    const fn = client[method];
    if (typeof fn !== 'function') return Promise.reject(new Error(`no RPC ${method}`));
    return new Promise((resolve, reject) =>
      fn.call(client, req, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res as T))),
    );
  }

  close(): void {
    this.runtime.close();
    this.image.close();
  }
}

let imagesBuilt: Promise<Awaited<ReturnType<typeof buildBusyboxImages>>> | undefined;

export function testImages() {
  imagesBuilt ??= buildBusyboxImages(join(projectRoot(), '.test-tmp', 'images'));
  return imagesBuilt;
}

export interface DaemonOptions {
  /** extra CLI flags */
  flags?: string[];
  /** import the busybox test image (default true) */
  importImages?: boolean;
  /**
   * "dist" runs bin/cri-mesos (the bundle, what npm start runs), "src" runs the sources
   * through tsx. Default: "dist" if env CRI_MESOS_DAEMON=dist, else "src".
   */
  from?: 'dist' | 'src';
  /** --log-level of the daemon (default: env CRI_MESOS_TEST_LOG_LEVEL, else info) */
  logLevel?: string;
  /**
   * "pipe" (default) collects the daemon's output in memory; "file" appends it
   * to daemon.log in the temp dir, so the daemon never depends on our pipes
   * (no EPIPE when we exit first).
   */
  logTo?: 'pipe' | 'file';
  /** start the daemon in its own process group, so a Ctrl-C in the terminal reaches only us (default false) */
  detached?: boolean;
  /** prefix of the temp dir and the cgroup root (default "cri-mesos-test"); read by the constructor only */
  prefix?: string;
  /** extra environment of the daemon, over ours (e.g. CRI_MESOS_TEST_HOLD_CREATE) */
  env?: Record<string, string>;
  /**
   * Run the daemon inside a network namespace of its own (`ip netns add`, entered with nsenter),
   * with a CNI conf dir in the temp dir holding a bridge + host-local (10.88.0.0/24, its store in
   * the temp dir) + portmap + loopback conflist. Bridges, iptables rules, IPs and ports stay in
   * that namespace, which teardown deletes. Read by the constructor only.
   */
  cni?: boolean;
  /** With `cni`: the namespace's name is `<netnsPrefix>-<id>` (default "cm-test"). Read by the constructor only. */
  netnsPrefix?: string;
  /** With `cni`: write the test conflist into the conf dir (default true); false leaves the dir empty. */
  cniConflist?: boolean;
  /**
   * With `cni`: a cni_conf_template (containerd's conf_template) for the daemon, given host-local's
   * store dir; written to `cniTemplateFile` and passed with --cni-conf-template.
   */
  cniTemplate?: (ipamDir: string) => string;
}

/** The test network's subnet (private, and only inside the daemon's own netns). */
export const TEST_SUBNET = '10.88.0';

/**
 * The conflist of the `cni` option (bridge + host-local with its store at `ipamDir` and the
 * private TEST_SUBNET /24 + portmap + loopback). The benchmark gives containerd the same one.
 */
export function testConflist(ipamDir: string): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'cri-mesos-test',
    plugins: [
      {
        type: 'bridge',
        bridge: 'cni0',
        isGateway: true,
        ipMasq: true,
        hairpinMode: true,
        ipam: { type: 'host-local', dataDir: ipamDir, ranges: [[{ subnet: `${TEST_SUBNET}.0/24` }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'loopback' },
    ],
  });
}

export class TestDaemon {
  readonly id = randomBytes(4).toString('hex');
  readonly dir: string;
  readonly socket: string;
  readonly workDir: string;
  readonly runtimeDir: string;
  readonly logDir: string;
  readonly cgroupRoot: string;
  /** where the daemon's output goes with logTo "file" */
  readonly logFile: string;
  client!: CriClient;
  private proc?: ChildProcess;
  private output = '';
  private opts: DaemonOptions;
  /** With `cni`: the daemon's network namespace (a name for ip netns), its conf dir, host-local's store. */
  readonly netnsName?: string;
  readonly cniConfDir: string;
  readonly ipamDir: string;
  /** With `cniTemplate`: where the template is. */
  readonly cniTemplateFile: string;

  constructor(opts: DaemonOptions = {}) {
    this.opts = opts;
    const prefix = opts.prefix ?? 'cri-mesos-test';
    this.dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    this.socket = join(this.dir, 'cri.sock');
    this.workDir = join(this.dir, 'work');
    this.runtimeDir = join(this.dir, 'run');
    this.logDir = join(this.dir, 'logs');
    this.logFile = join(this.dir, 'daemon.log');
    this.cgroupRoot = `${prefix}-${this.id}`;
    this.cniConfDir = join(this.dir, 'cni', 'net.d');
    this.ipamDir = join(this.dir, 'cni', 'ipam');
    this.cniTemplateFile = join(this.dir, 'cni', 'template.conflist');
    if (opts.cni) this.netnsName = `${opts.netnsPrefix ?? 'cm-test'}-${this.id}`;
  }

  /** The conflist the `cni` option writes (bridge + host-local + portmap + loopback). */
  testConflist(): string {
    return testConflist(this.ipamDir);
  }

  /**
   * Put `list` in place of the test conflist for this test (the conf dir is watched) and wait
   * until the daemon has loaded it (verbose Status names the loaded network); the test conflist
   * is back, and loaded, when the test ends.
   */
  async useConflist(t: ExecutionContext, list: { plugins: object[] }): Promise<void> {
    const file = join(this.cniConfDir, '10-test.conflist');
    const loaded = (want: { plugins: object[] }) =>
      waitFor('the daemon to load the conflist', async () => {
        const net = (await this.client.call('Status', { verbose: true })).info.cniconfig as string | undefined;
        return (net && isDeepStrictEqual(JSON.parse(net).network.plugins, want.plugins)) || undefined;
      });
    t.teardown(async () => {
      writeFileSync(file, this.testConflist());
      await loaded(JSON.parse(this.testConflist()));
    });
    writeFileSync(file, JSON.stringify(list));
    await loaded(list);
  }

  /** Run a command inside the daemon's network namespace; its stdout. */
  inNetns(argv: string[], timeoutMs = 10_000): string {
    if (!this.netnsName) throw new Error('the daemon has no network namespace of its own (option cni)');
    return execFileSync('nsenter', [`--net=/run/netns/${this.netnsName}`, '--', ...argv], { timeout: timeoutMs, encoding: 'utf8' });
  }

  /** With `cni`: make the namespace now (init does it too), e.g. to start a dockerd in it first. */
  makeNetns(): void {
    if (!this.netnsName || existsSync(`/run/netns/${this.netnsName}`)) return;
    execFileSync('ip', ['netns', 'add', this.netnsName]);
    execFileSync('ip', ['-n', this.netnsName, 'link', 'set', 'lo', 'up']);
    mkdirSync(this.cniConfDir, { recursive: true });
    if (this.opts.cniConflist !== false) writeFileSync(join(this.cniConfDir, '10-test.conflist'), this.testConflist());
    if (this.opts.cniTemplate) writeFileSync(this.cniTemplateFile, this.opts.cniTemplate(this.ipamDir));
  }

  /** Import the images and launch; on failure, remove what was made and throw. */
  static async start(opts: DaemonOptions = {}): Promise<TestDaemon> {
    const d = new TestDaemon(opts);
    try {
      await d.init();
    } catch (e) {
      await d.teardown();
      throw e;
    }
    return d;
  }

  /** opts are merged over the constructor's (prefix has no effect here). */
  async init(opts: DaemonOptions = {}): Promise<void> {
    this.opts = { ...this.opts, ...opts };
    mkdirSync(this.logDir, { recursive: true });
    this.makeNetns();
    if (this.opts.importImages !== false) {
      const imgs = await testImages();
      const store = new ImageStore(join(this.workDir, 'images'));
      await importImage(store, imgs.ociDir);
      await importImage(store, imgs.layeredDir);
    }
    await this.launch(this.opts.flags ?? []);
  }

  private flags: string[] = [];

  /** The environment of the next launch (over ours), e.g. CRI_MESOS_FAULT. */
  setEnv(env: Record<string, string> | undefined): void {
    this.opts = { ...this.opts, env };
  }

  /** Whether the daemon process has ended (killed by a fault point, for one). */
  exited(): boolean {
    return !this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null;
  }

  async launch(flags: string[] = this.flags): Promise<void> {
    this.flags = flags;
    const from = this.opts.from ?? (process.env.CRI_MESOS_DAEMON === 'dist' ? 'dist' : 'src');
    // dist: what npm start runs (bin/cri-mesos: the bundle, with its node flags); src: the sources through tsx.
    const [command, ...entry] =
      from === 'dist' ? [join(projectRoot(), 'bin', 'cri-mesos')] : [process.execPath, '--import', 'tsx', join(projectRoot(), 'src', 'cli.ts')];
    const args = [
      ...entry,
      'daemon',
      '--socket',
      this.socket,
      '--work-dir',
      this.workDir,
      '--runtime-dir',
      this.runtimeDir,
      '--cgroup-root',
      this.cgroupRoot,
      '--config',
      '/dev/null',
      '--log-level',
      this.opts.logLevel ?? process.env.CRI_MESOS_TEST_LOG_LEVEL ?? 'info',
      ...(this.netnsName ? ['--cni-conf-dir', this.cniConfDir, '--cni-bin-dirs', '/usr/lib/cni'] : []),
      ...(this.netnsName && this.opts.cniTemplate ? ['--cni-conf-template', this.cniTemplateFile] : []),
      ...flags,
    ];
    // nsenter joins the namespace and execs: the pid we hold is the daemon's.
    const spawnCmd = this.netnsName ? 'nsenter' : command!;
    const spawnArgs = this.netnsName ? [`--net=/run/netns/${this.netnsName}`, '--', command!, ...args] : args;
    let proc: ChildProcess;
    const detached = this.opts.detached ?? false;
    const env = { ...process.env, ...this.opts.env };
    if (this.opts.logTo === 'file') {
      const out = openSync(this.logFile, 'a');
      try {
        proc = spawn(spawnCmd, spawnArgs, { cwd: projectRoot(), env, stdio: ['ignore', out, out], detached });
      } finally {
        closeSync(out);
      }
    } else {
      proc = spawn(spawnCmd, spawnArgs, { cwd: projectRoot(), env, stdio: ['ignore', 'pipe', 'pipe'], detached });
      proc.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
      proc.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    }
    this.proc = proc;
    const deadline = Date.now() + 30_000;
    // The socket file may be a stale one from a killed daemon: wait for an answer.
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`daemon exited early (${proc.exitCode}):\n${this.logs()}`);
      if (Date.now() > deadline) throw new Error(`daemon did not answer on its socket:\n${this.logs()}`);
      if (existsSync(this.socket)) {
        const client = new CriClient(this.socket);
        try {
          await client.call('Version', {}, 1000);
          this.client = client;
          return;
        } catch (err) {
          // A daemon whose recovery failed answers, with UNAVAILABLE: it is up.
          if (/could not recover/.test(String((err as { details?: string }).details))) {
            this.client = client;
            return;
          }
          client.close();
        }
      }
      await sleep(50);
    }
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Everything the daemon printed (all launches). */
  logs(): string {
    if (this.opts.logTo !== 'file') return this.output;
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Create + start a container and wait until it runs; its id and the host pid of its init. */
  async runContainer(pod: string, sandbox: object, name: string, command: string[], extra: Record<string, unknown> = {}): Promise<{ id: string; pid: number }> {
    const { container_id: id } = await this.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig(name, command, extra),
      sandbox_config: sandbox,
    });
    await this.client.call('StartContainer', { container_id: id });
    const pid = await waitFor(`${name} running`, async () => {
      const s = await this.client.call('ContainerStatus', { container_id: id, verbose: true });
      if (s.status.state !== 'CONTAINER_RUNNING') return undefined;
      const p = (JSON.parse(s.info.info) as { pid: number }).pid;
      return p > 0 ? p : undefined;
    });
    // StartContainer answers once the start byte is written (as runc start does); the init
    // execs the command a moment later. Gone already (a short command) counts as exec'd.
    await waitFor(`${name} to exec its command`, () => {
      try {
        return readlinkSync(`/proc/${pid}/exe`) !== launchHelperPath();
      } catch {
        return true;
      }
    });
    return { id: id as string, pid };
  }

  /**
   * The host directory of the daemon's cgroup `rel` (under its cgroup root) for `controller`,
   * found as the daemon finds it: the v1 hierarchy carrying it, else cgroup2 if it offers it
   * (freezer: v1, else the cgroup2 tree). Undefined when the host has neither.
   */
  cgroupDir(controller: string, ...rel: string[]): string | undefined {
    const cg = Cgroups.detect();
    const path = join(this.cgroupRoot, ...rel);
    if (controller === 'freezer') return cg.freezerDir(path);
    if (cg.v1(controller) !== undefined) return cg.v1Path(controller, path);
    return cg.hasV2Controller(controller) ? cg.v2Path(path) : undefined;
  }

  /**
   * Until a created container's launch helper is held: its cgroups (with their limits) are made
   * then, at its StartContainer or at a quiet moment after its CreateContainer.
   */
  waitLaunched(pod: string, ctr: string, timeoutMs = 10_000): Promise<unknown> {
    const held = runtimeFile(containerDir(this.runtimeDir, { value: ctr, parent: { value: pod } }), 'held');
    return waitFor(`the launch of container ${ctr}`, () => existsSync(held), timeoutMs);
  }

  /** Polls ContainerStatus until the container has exited; its status. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  waitExited(id: string, timeoutMs = 15_000): Promise<any> {
    return waitFor(`container ${id} to exit`, async () => {
      const s = await this.client.call('ContainerStatus', { container_id: id });
      return s.status.state === 'CONTAINER_EXITED' ? s.status : undefined;
    }, timeoutMs);
  }

  /** StopPodSandbox then RemovePodSandbox: a test's cleanup of its pod. */
  async removePod(pod: string): Promise<void> {
    await this.client.call('StopPodSandbox', { pod_sandbox_id: pod });
    await this.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  }

  /** kill -9 the daemon (only our own child). */
  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
    this.client?.close();
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.client?.close();
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await Promise.race([exited, sleep(2_000)]);
    }
  }

  /**
   * Remove every pod through the API (concurrency at a time; default one by
   * one), stop the daemon, then sweep what might be left.
   */
  async teardown(concurrency = 1): Promise<void> {
    try {
      if (this.proc && this.proc.exitCode === null && this.client) {
        const pods: { id: string }[] = (await this.client.call('ListPodSandbox', {}, 10_000)).items ?? [];
        let next = 0;
        const worker = async () => {
          while (next < pods.length) {
            const id = pods[next++]!.id;
            await this.client.call('RemovePodSandbox', { pod_sandbox_id: id }, 60_000).catch(() => undefined);
          }
        };
        await Promise.all(Array.from({ length: Math.min(Math.max(1, concurrency), pods.length) }, worker));
      }
    } catch {
      // fall through to the sweep
    }
    await this.stop();
    await sweep(this.cgroupRoot, this.dir);
    if (this.netnsName) {
      try {
        execFileSync('ip', ['netns', 'del', this.netnsName]);
      } catch {
        // never made
      }
    }
  }
}

/** Kill whatever is left in our cgroups, unmount what is left under our dir, delete both. */
export async function sweep(cgroupRoot: string, dir: string): Promise<void> {
  const cg = Cgroups.detect();
  try {
    await cg.freezerKill(cgroupRoot);
  } catch {
    // nothing there
  }
  try {
    await cg.removeEverywhere(cgroupRoot);
  } catch {
    // already gone
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    try {
      native().umount2(m, MNT_DETACH);
    } catch {
      // raced
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

export function podConfig(name: string, extra: Record<string, unknown> = {}, logDir?: string) {
  return {
    metadata: { name, namespace: 'default', uid: `uid-${name}-${randomBytes(3).toString('hex')}`, attempt: 0 },
    hostname: name,
    log_directory: logDir ?? '',
    labels: { app: name },
    annotations: { 'test/annotation': 'yes' },
    linux: { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
    ...extra,
  };
}

/** A pod whose linux.security_context.privileged is true: only such a pod may hold privileged containers. */
export function privilegedPodConfig(name: string, logDir?: string) {
  const cfg = podConfig(name, {}, logDir);
  return { ...cfg, linux: { security_context: { ...cfg.linux.security_context, privileged: true } } };
}

export function containerConfig(name: string, command: string[], extra: Record<string, unknown> = {}) {
  return {
    metadata: { name, attempt: 0 },
    image: { image: BUSYBOX },
    command,
    log_path: `${name}/0.log`,
    labels: { container: name },
    ...extra,
  };
}

/** A CRI log line: RFC 3339 nanosecond time, stream, P (partial) or F (full), text. */
export const CRI_LOG_LINE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (stdout|stderr) ([PF]) (.*)$/;

/** The lines of a CRI log file; throws on a line that is not in the CRI format. */
export function criLogLines(path: string): { stream: string; tag: string; text: string }[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const m = CRI_LOG_LINE.exec(l);
      if (!m) throw new Error(`not a CRI log line: ${l.slice(0, 200)}`);
      return { stream: m[2]!, tag: m[3]!, text: m[4]! };
    });
}

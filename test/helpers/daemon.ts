// Starts a real cri-mesos daemon (a child process) on a temp socket with temp
// work/runtime dirs and its own cgroup root, and talks gRPC to it as kubelet
// does. teardown() removes everything it made, also after a failed test.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { projectRoot } from '../../src/util/paths.js';
import { PROTO_OPTIONS } from '../../src/cri/server.js';
import { buildBusyboxImages, TEST_TAGS } from '../../hack/build-test-images.js';
import { ImageStore } from '../../src/images/store.js';
import { importImage } from '../../src/images/import.js';
import { Cgroups } from '../../src/cgroups/index.js';
import { MNT_DETACH, native } from '../../src/native/index.js';

export const BUSYBOX = TEST_TAGS.oci;

type Unary = (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

export class CriClient {
  private readonly runtime: grpc.Client & Record<string, Unary>;
  private readonly image: grpc.Client & Record<string, Unary>;

  constructor(socket: string) {
    const def = protoLoader.loadSync(join(projectRoot(), 'api', 'runtime-v1.proto'), PROTO_OPTIONS);
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      runtime: { v1: Record<string, new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client & Record<string, Unary>> };
    };
    this.runtime = new pkg.runtime.v1.RuntimeService!(`unix://${socket}`, grpc.credentials.createInsecure());
    this.image = new pkg.runtime.v1.ImageService!(`unix://${socket}`, grpc.credentials.createInsecure());
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  call<T = any>(method: string, req: object = {}, timeoutMs = 60_000): Promise<T> {
    const image = ['ListImages', 'ImageStatus', 'PullImage', 'RemoveImage', 'ImageFsInfo'].includes(method);
    const client = image ? this.image : this.runtime;
    const fn = client[method];
    if (typeof fn !== 'function') throw new Error(`no RPC ${method}`);
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
}

export class TestDaemon {
  readonly id = randomBytes(4).toString('hex');
  readonly dir = mkdtempSync(join(tmpdir(), 'cri-mesos-test-'));
  readonly socket = join(this.dir, 'cri.sock');
  readonly workDir = join(this.dir, 'work');
  readonly runtimeDir = join(this.dir, 'run');
  readonly logDir = join(this.dir, 'logs');
  readonly cgroupRoot = `cri-mesos-test-${this.id}`;
  client!: CriClient;
  private proc?: ChildProcess;
  private output = '';

  static async start(opts: DaemonOptions = {}): Promise<TestDaemon> {
    const d = new TestDaemon();
    await d.init(opts);
    return d;
  }

  async init(opts: DaemonOptions = {}): Promise<void> {
    mkdirSync(this.logDir, { recursive: true });
    if (opts.importImages !== false) {
      const imgs = await testImages();
      const store = new ImageStore(join(this.workDir, 'images'));
      await importImage(store, imgs.ociDir);
      await importImage(store, imgs.layeredDir);
    }
    await this.launch(opts.flags ?? []);
  }

  private flags: string[] = [];

  async launch(flags: string[] = this.flags): Promise<void> {
    this.flags = flags;
    // CRI_MESOS_DAEMON=dist runs the built daemon (what npm start runs) instead of the sources through tsx.
    const entry =
      process.env.CRI_MESOS_DAEMON === 'dist' ? [join(projectRoot(), 'dist', 'src', 'cli.js')] : ['--import', 'tsx', join(projectRoot(), 'src', 'cli.ts')];
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
      process.env.CRI_MESOS_TEST_LOG_LEVEL ?? 'info',
      ...flags,
    ];
    const proc = spawn(process.execPath, args, { cwd: projectRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    proc.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    const deadline = Date.now() + 30_000;
    // The socket file may be a stale one from a killed daemon: wait for an answer.
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`daemon exited early (${proc.exitCode}):\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`daemon did not answer on its socket:\n${this.output}`);
      if (existsSync(this.socket)) {
        const client = new CriClient(this.socket);
        try {
          await client.call('Version', {}, 1000);
          this.client = client;
          return;
        } catch {
          client.close();
        }
      }
      await sleep(50);
    }
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  logs(): string {
    return this.output;
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
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }

  /** Remove every pod through the API, stop the daemon, then sweep what might be left. */
  async teardown(): Promise<void> {
    try {
      if (this.proc && this.proc.exitCode === null) {
        const pods = await this.client.call('ListPodSandbox', {}, 10_000);
        for (const p of pods.items) await this.client.call('RemovePodSandbox', { pod_sandbox_id: p.id }, 30_000).catch(() => undefined);
      }
    } catch {
      // fall through to the sweep
    }
    await this.stop();
    await sweep(this.cgroupRoot, this.dir);
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

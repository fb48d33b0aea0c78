// The benchmark's own CRI client and cri-mesos daemon (temp dirs, own cgroup
// root). Like test/helpers/daemon.ts, but without ava, which refuses to be
// loaded outside its CLI. The daemon gets its own process group, so a Ctrl-C
// in the terminal reaches only the benchmark, which then removes what it made,
// and it logs to a file in its temp dir, so it does not die of EPIPE when the
// benchmark exits first.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { projectRoot } from '../../src/util/paths.js';
import { PROTO_OPTIONS } from '../../src/cri/server.js';
import { buildBusyboxImages } from '../build-test-images.js';
import { ImageStore } from '../../src/images/store.js';
import { importImage } from '../../src/images/import.js';
import { Cgroups } from '../../src/cgroups/index.js';
import { MNT_DETACH, native } from '../../src/native/index.js';

type Unary = (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;
const IMAGE_RPCS = new Set(['ListImages', 'ImageStatus', 'PullImage', 'RemoveImage', 'ImageFsInfo']);

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

export class BenchDaemon {
  readonly id = randomBytes(4).toString('hex');
  readonly dir = mkdtempSync(join(tmpdir(), 'cri-mesos-bench-daemon-'));
  readonly socket = join(this.dir, 'cri.sock');
  readonly workDir = join(this.dir, 'work');
  readonly runtimeDir = join(this.dir, 'run');
  readonly cgroupRoot = `cri-mesos-bench-${this.id}`;
  client!: CriClient;
  private proc?: ChildProcess;
  readonly logFile = join(this.dir, 'daemon.log');

  /** from: "dist" runs dist/src/cli.js (what npm start runs), "src" runs the sources through tsx. */
  static async start(from: 'dist' | 'src', logLevel: string, flags: string[] = []): Promise<BenchDaemon> {
    const d = new BenchDaemon();
    try {
      const imgs = await buildBusyboxImages(join(projectRoot(), '.test-tmp', 'images'));
      const store = new ImageStore(join(d.workDir, 'images'));
      await importImage(store, imgs.ociDir);
      await d.launch(from, logLevel, flags);
    } catch (e) {
      await d.teardown();
      throw e;
    }
    return d;
  }

  private async launch(from: 'dist' | 'src', logLevel: string, flags: string[]): Promise<void> {
    const entry = from === 'dist' ? [join(projectRoot(), 'dist', 'src', 'cli.js')] : ['--import', 'tsx', join(projectRoot(), 'src', 'cli.ts')];
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
      logLevel,
      ...flags,
    ];
    const out = openSync(this.logFile, 'a');
    const proc = spawn(process.execPath, args, { cwd: projectRoot(), stdio: ['ignore', out, out], detached: true });
    closeSync(out);
    this.proc = proc;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`daemon exited early (${proc.exitCode}):\n${this.logs()}`);
      if (Date.now() > deadline) throw new Error(`daemon did not answer on its socket:\n${this.logs()}`);
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
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  private async stop(): Promise<void> {
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

  /** Remove every pod through the API, stop the daemon, then sweep cgroups, mounts and the temp dir. */
  async teardown(concurrency = 8): Promise<void> {
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
        await Promise.all(Array.from({ length: Math.min(concurrency, pods.length) }, worker));
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

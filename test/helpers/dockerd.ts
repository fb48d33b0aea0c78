// A Docker Engine of a test file's own: dockerd with its data root, exec root, pid file and socket
// in a temp dir, no bridge and no iptables rules, and a cgroup parent of its own. It loads the
// busybox test image from a docker-archive tar (Debian's Docker 20.10 cannot load an OCI layout).
// stop() ends only the dockerd it started (by its PID), unmounts what is left under its dirs,
// removes its cgroups and the temp dir, also after a failed test.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, openSync, closeSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Engine } from '../../src/docker/engine.js';
import { Cgroups } from '../../src/cgroups/index.js';
import { MNT_DETACH, native } from '../../src/native/index.js';
import { testImages } from './daemon.js';
import { TEST_TAGS } from '../../hack/build-test-images.js';

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The busybox test image as the Engine knows it (loaded from the docker-archive tar). */
export const DOCKER_BUSYBOX = TEST_TAGS.docker;

export class TestDockerd {
  readonly dir: string;
  readonly socket: string;
  readonly host: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly pidFile: string;
  readonly logFile: string;
  readonly cgroupParent: string;
  engine!: Engine;
  private proc?: ChildProcess;

  /** A network namespace (a path, as /run/netns/<name>) dockerd runs in, so its containers' networks stay there. */
  readonly netns?: string;

  constructor(prefix = 'cm-dockerd', opts: { netns?: string } = {}) {
    if (opts.netns) this.netns = opts.netns;
    this.dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    this.socket = join(this.dir, 'docker.sock');
    this.host = `unix://${this.socket}`;
    this.dataRoot = join(this.dir, 'data');
    this.execRoot = join(this.dir, 'exec');
    this.pidFile = join(this.dir, 'dockerd.pid');
    this.logFile = join(this.dir, 'dockerd.log');
    this.cgroupParent = `${prefix}-${randomBytes(4).toString('hex')}`;
  }

  static available(): boolean {
    return existsSync('/usr/sbin/dockerd') || existsSync('/usr/bin/dockerd');
  }

  static async start(prefix?: string, opts: { netns?: string } = {}): Promise<TestDockerd> {
    const d = new TestDockerd(prefix, opts);
    try {
      await d.init();
    } catch (err) {
      await d.stop();
      throw err;
    }
    return d;
  }

  async init(): Promise<void> {
    const out = openSync(this.logFile, 'a');
    try {
      const bin = existsSync('/usr/sbin/dockerd') ? '/usr/sbin/dockerd' : '/usr/bin/dockerd';
      // nsenter joins the namespace and execs dockerd: the pid we hold is dockerd's.
      this.proc = spawn(
        this.netns ? 'nsenter' : bin,
        [
          ...(this.netns ? [`--net=${this.netns}`, '--', bin] : []),
          '--data-root', this.dataRoot,
          '--exec-root', this.execRoot,
          '--pidfile', this.pidFile,
          '-H', this.host,
          '--bridge=none',
          '--iptables=false',
          '--ip6tables=false',
          '--ip-forward=false',
          '--ip-masq=false',
          '--userland-proxy=false',
          '--cgroup-parent', `/${this.cgroupParent}`,
          '--storage-driver', 'overlay2',
          '--log-level', 'warn',
        ],
        { stdio: ['ignore', out, out] },
      );
    } finally {
      closeSync(out);
    }
    this.engine = new Engine(this.host);
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`dockerd exited (${this.proc.exitCode}):\n${this.logs()}`);
      try {
        await this.engine.ping();
        break;
      } catch {
        if (Date.now() > deadline) throw new Error(`dockerd did not answer:\n${this.logs()}`);
        await sleep(100);
      }
    }
    const imgs = await testImages();
    await this.engine.load(await readFile(imgs.dockerTar));
    if (!(await this.engine.inspectImage(DOCKER_BUSYBOX))) throw new Error(`docker load did not give ${DOCKER_BUSYBOX}`);
  }

  logs(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Every container the Engine has (docker ps -a), as names. */
  async containers(): Promise<string[]> {
    const r = await this.engine.call<{ Names: string[] }[]>('GET', '/containers/json?all=1');
    return r.body.flatMap((c) => c.Names);
  }

  /**
   * A test file's teardown: no docker container may be left (cri-mesos removes its own with
   * their pods), then stop() must find nothing left behind; throws naming what was.
   */
  async stopAndCheck(): Promise<void> {
    const left = await this.containers().catch(() => []);
    const leaked = await this.stop();
    if (left.length) throw new Error(`docker containers left after teardown: ${left.join(', ')}`);
    if (leaked.length) throw new Error(`left under the dockerd's data root or cgroup parent: ${leaked.join(', ')}`);
  }

  /**
   * Stops dockerd and removes everything; returns what it found left behind (leaks): mounts
   * under the data root, and container cgroups under its cgroup parent.
   */
  async stop(): Promise<string[]> {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([exited, sleep(20_000)]);
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGKILL');
        await Promise.race([exited, sleep(5_000)]);
      }
    }
    // Whatever is still mounted under our dirs (overlay2 layers, the exec root's netns files).
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m): m is string => !!m && m.startsWith(this.dir + '/'))
      .sort((a, b) => b.length - a.length);
    // dockerd leaves its exec root's netns/default bind mount; under the data root nothing may be left.
    const leaked = mounts.filter((m) => m.startsWith(this.dataRoot + '/'));
    for (const m of mounts) {
      try {
        native().umount2(m, MNT_DETACH);
      } catch {
        // raced
      }
    }
    const cg = Cgroups.detect();
    for (const mp of cg.allMountPoints()) {
      for (const child of listDir(join(mp, this.cgroupParent))) {
        if (statSync(join(mp, this.cgroupParent, child)).isDirectory()) leaked.push(join(mp, this.cgroupParent, child));
      }
    }
    try {
      await cg.removeEverywhere(this.cgroupParent);
    } catch {
      // never made
    }
    rmSync(this.dir, { recursive: true, force: true });
    return leaked;
  }

  /** Mount points left under the dir (for the leak check). */
  leftoverMounts(): string[] {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((m): m is string => !!m && m.startsWith(this.dir + '/'));
  }
}

// What CRI streaming needs from the runtime, against real containers: streaming exec (pipes and
// a terminal from the container's devpts), attach through the launch helper's socket (also after
// a kill -9 of the daemon), and port-forward into the pod's network namespace. The containerizer
// is driven in-process (a Daemon in this test process, talked to over its CRI socket like
// kubelet would); the restart test uses a daemon child process it can kill -9. Root only.
import test, { type ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Daemon } from '../../src/daemon.js';
import { defaultConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { ImageStore } from '../../src/images/store.js';
import { importImage } from '../../src/images/import.js';
import { containerId, podId } from '../../src/cri/context.js';
import { containerDir, RUNTIME_FILES } from '../../src/paths.js';
import { Code, StatusError, errnoOf } from '../../src/errors.js';
import { attachStreams, connectAttach } from '../../src/containerizer/mesos/attach.js';
import type { ExecHandle, ExecIO } from '../../src/containerizer/containerizer.js';
import { CriClient, TestDaemon, containerConfig, isRoot, podConfig, sweep, testImages, waitFor } from '../helpers/daemon.js';

/** Collects a stream's text; `until` waits for a pattern in it. */
function collector(stream: Readable | undefined) {
  let text = '';
  let ended = false;
  stream?.on('data', (d: Buffer) => (text += d.toString('utf8')));
  stream?.on('end', () => (ended = true));
  return {
    text: () => text,
    ended: () => ended,
    until: (re: RegExp, ms = 10_000) => waitFor(`${re} in ${JSON.stringify(text.slice(-200))}`, () => re.test(text), ms),
  };
}

const write = (w: Writable | undefined, s: string | Buffer) => new Promise<void>((r) => w!.write(s, () => r()));

/** Host pids whose command line is exactly `argv`. */
function pidsOf(argv: string[]): number[] {
  const want = argv.join('\0') + '\0';
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8') === want) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

if (!isRoot()) {
  test.skip('streaming primitives need root (namespaces, cgroups, mounts)', () => {});
} else {
  const dir = mkdtempSync(join(tmpdir(), 'cri-mesos-stream-'));
  const cgroupRoot = `cri-mesos-stream-${randomBytes(4).toString('hex')}`;
  let daemon: Daemon;
  let client: CriClient;
  let pod: string;
  let sandbox: ReturnType<typeof podConfig>;
  const logDir = join(dir, 'logs');

  test.serial.before(async () => {
    mkdirSync(logDir, { recursive: true });
    const imgs = await testImages();
    const store = new ImageStore(join(dir, 'work', 'images'));
    await importImage(store, imgs.ociDir);
    const config = {
      ...defaultConfig(),
      socket: join(dir, 'cri.sock'),
      workDir: join(dir, 'work'),
      runtimeDir: join(dir, 'run'),
      cgroupRoot,
    };
    daemon = await Daemon.start(config, silentLogger());
    await daemon.ready;
    client = new CriClient(config.socket);
    sandbox = podConfig('streaming', {}, logDir);
    pod = (await client.call('RunPodSandbox', { config: sandbox })).pod_sandbox_id;
  });

  test.after.always(async () => {
    try {
      if (client) {
        const pods: { id: string }[] = (await client.call('ListPodSandbox', {}, 10_000)).items ?? [];
        for (const p of pods) await client.call('RemovePodSandbox', { pod_sandbox_id: p.id }, 60_000).catch(() => undefined);
        client.close();
      }
      await daemon?.stop();
    } finally {
      await sweep(cgroupRoot, dir);
    }
  });

  const containerizer = () => daemon.ctx.containerizer;

  /** Create + start a container; its CRI id. */
  const run = async (name: string, command: string[], extra: Record<string, unknown> = {}): Promise<string> => {
    const { container_id: id } = await client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig(name, command, extra),
      sandbox_config: sandbox,
    });
    await client.call('StartContainer', { container_id: id });
    await waitFor(`${name} running`, () => containerizer().isRunning(containerId({ id, sandboxId: pod })));
    return id as string;
  };

  const exec = (ctr: string, argv: string[], io: Partial<ExecIO>): Promise<ExecHandle> => {
    const record = daemon.ctx.containers.get(ctr)!;
    return containerizer().exec(containerId(record), argv, record.process, { tty: false, stdin: false, stdout: true, stderr: true, ...io });
  };

  const logOf = (name: string) => {
    try {
      return readFileSync(join(logDir, name, '0.log'), 'utf8');
    } catch {
      return '';
    }
  };

  let sleeper: string;
  test.serial.before(async () => {
    sleeper = await run('sleeper', ['sleep', '3600']);
  });

  test.serial('exec without a tty: stdin reaches the process, its end is EOF, output and exit code come back', async (t) => {
    const h = await exec(sleeper, ['cat'], { stdin: true });
    const out = collector(h.stdout);
    const payload = randomBytes(300_000).toString('hex');
    await write(h.stdin, payload);
    await out.until(new RegExp(payload.slice(-40)));
    h.stdin!.end();
    t.is(await h.wait(), 0);
    t.is(out.text(), payload);
    t.true(out.ended());
  });

  test.serial('exec exit codes: 0 and 7, with stderr apart from stdout', async (t) => {
    const ok = await exec(sleeper, ['true'], {});
    t.is(await ok.wait(), 0);
    const h = await exec(sleeper, ['sh', '-c', 'echo out; echo err >&2; exit 7'], {});
    const out = collector(h.stdout);
    const err = collector(h.stderr);
    t.is(await h.wait(), 7);
    t.is(out.text(), 'out\n');
    t.is(err.text(), 'err\n');
  });

  test.serial('exec of a command that does not exist is 127 with the reason on stderr; a file that is not executable is 126', async (t) => {
    const h = await exec(sleeper, ['no-such-command'], {});
    const err = collector(h.stderr);
    t.is(await h.wait(), 127);
    await err.until(/exec: "no-such-command": executable file not found in \$PATH/);
    const h2 = await exec(sleeper, ['/etc/passwd'], {});
    const err2 = collector(h2.stderr);
    t.is(await h2.wait(), 126);
    await err2.until(/"\/etc\/passwd": permission denied/);
  });

  test.serial('exec with a tty: a /dev/pts terminal of the container, resize shows in stty size, stdin end is ^D', async (t) => {
    const h = await exec(sleeper, ['sh', '-c', 'read x; t=$(tty); echo "TTY=$t"; test -c "$t" && echo EXISTS; stty size; cat; echo CAT-DONE'], {
      tty: true,
      stdin: true,
      stderr: false,
    });
    t.is(h.stderr, undefined);
    const out = collector(h.stdout);
    h.resize(123, 45);
    await write(h.stdin, 'go\n');
    await out.until(/45 123/);
    const tty = /TTY=(\/dev\/pts\/\d+)/.exec(out.text())?.[1];
    t.truthy(tty, out.text());
    t.regex(out.text(), /EXISTS/);
    // The terminal is the container's: its devpts instance is not the host's.
    const pidOfSleeper = containerizer().processPid(containerId(daemon.ctx.containers.get(sleeper)!))!;
    t.true(readdirSync(`/proc/${pidOfSleeper}/root/dev/pts`).includes(tty!.split('/').pop()!));
    h.resize(80, 24);
    await write(h.stdin, 'partial');
    h.stdin!.end();
    t.is(await h.wait(), 0);
    await out.until(/CAT-DONE/);
    t.true(out.ended());
  });

  test.serial('kill() of an exec kills its whole process group: nothing is left in /proc', async (t) => {
    const tag = String(100000 + Math.floor(Math.random() * 800000));
    const h = await exec(sleeper, ['sh', '-c', `sleep ${tag} & sleep ${tag}`], {});
    await waitFor('both sleeps', () => pidsOf(['sleep', tag]).length === 2);
    h.kill();
    t.is(await h.wait(), 137);
    await waitFor('no sleep left', () => pidsOf(['sleep', tag]).length === 0, 5000);
    t.deepEqual(pidsOf(['sleep', tag]), []);
  });

  test.serial('attach to a tty container: input, output, resize; the log has the terminal output as stdout', async (t) => {
    const id = await run('tty-ctr', ['sh', '-c', 'while read l; do echo "got:$l"; stty size; done'], { tty: true, stdin: true });
    const a = await containerizer().attach(containerId({ id, sandboxId: pod }));
    t.is(a.stderr, undefined);
    const out = collector(a.stdout);
    a.resize(101, 31);
    await write(a.stdin, 'one\n');
    await out.until(/got:one\r\n31 101/);
    a.close();
    await waitFor('the log line', () => / stdout F got:one$/m.test(logOf('tty-ctr')));
    t.regex(logOf('tty-ctr'), / stdout F 31 101$/m);
    t.true(containerizer().isRunning(containerId({ id, sandboxId: pod })));
  });

  test.serial('attach to a container without a tty: stdout and stderr apart, stdin kept open across attaches', async (t) => {
    const id = await run('pipe-ctr', ['sh', '-c', 'while read l; do echo "out:$l"; echo "err:$l" >&2; done; echo stdin-ended'], { stdin: true });
    const cid = containerId({ id, sandboxId: pod });
    const a = await containerizer().attach(cid);
    const out = collector(a.stdout);
    const err = collector(a.stderr);
    await write(a.stdin, 'a\n');
    await out.until(/out:a\n/);
    await err.until(/err:a\n/);
    t.notRegex(out.text(), /err:/);
    // Not stdin_once: the end of this attach's stdin is not the container's.
    a.stdin!.end();
    a.close();
    await sleep(300);
    const b = await containerizer().attach(cid);
    const out2 = collector(b.stdout);
    await write(b.stdin, 'b\n');
    await out2.until(/out:b\n/);
    t.notRegex(out2.text(), /stdin-ended/);
    b.close();
    t.regex(logOf('pipe-ctr'), / stderr F err:a$/m);
  });

  test.serial('two attaches at once both see all output, and the log is written as before', async (t) => {
    const id = await run('ticker', ['sh', '-c', 'i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.05; done']);
    const cid = containerId({ id, sandboxId: pod });
    const [a, b] = await Promise.all([containerizer().attach(cid), containerizer().attach(cid)]);
    t.is(a.stdin, undefined);
    const ca = collector(a.stdout);
    const cb = collector(b.stdout);
    await ca.until(/tick\d+\n(.|\n)*tick\d+\n(.|\n)*tick\d+\n/);
    await cb.until(/tick\d+\n(.|\n)*tick\d+\n(.|\n)*tick\d+\n/);
    // A tick both saw, seen by both (neither starves the other).
    const last = Number(/tick(\d+)\n$/.exec(ca.text())![1]) + 2;
    await ca.until(new RegExp(`tick${last}\\n`));
    await cb.until(new RegExp(`tick${last}\\n`));
    a.close();
    b.close();
    const log = logOf('ticker');
    t.regex(log, new RegExp(`^\\S+ stdout F tick${last}$`, 'm'));
    t.regex(log, /^\S+ stdout F tick0$/m);
  });

  test.serial('a client that never reads does not stall the container or its log', async (t) => {
    const id = await run('flood', ['sh', '-c', 'i=0; while [ $i -lt 20000 ]; do echo "line $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; i=$((i+1)); done; echo FLOOD-DONE; sleep 3600']);
    const cid = containerId({ id, sandboxId: pod });
    const stuck = await connectAttach(containerDir(daemon.ctx.config.runtimeDir, cid), RUNTIME_FILES.attachSock);
    stuck.pause(); // never reads
    await waitFor('the whole flood in the log', () => /stdout F FLOOD-DONE$/m.test(logOf('flood')), 15_000);
    t.regex(logOf('flood'), /stdout F line 19999 x+$/m);
    stuck.destroy();
  });

  test.serial('stdin_once: the container stdin ends when the first attach that wrote it leaves', async (t) => {
    const id = await run('once', ['sh', '-c', 'cat; echo cat-saw-eof; exit 3'], { stdin: true, stdin_once: true });
    const cid = containerId({ id, sandboxId: pod });
    const a = await containerizer().attach(cid);
    const out = collector(a.stdout);
    await write(a.stdin, 'hello\n');
    await out.until(/hello\n/);
    a.close(); // leaves without ending stdin itself
    const t0 = await containerizer().wait(cid);
    t.is(t0?.exitCode, 3);
    t.regex(logOf('once'), /stdout F cat-saw-eof$/m);
  });

  test.serial('port-forward: a 16 MiB round trip intact, 20 connections at once, ECONNREFUSED for a closed port', async (t) => {
    await run('echo-server', ['nc', '-ll', '-p', '8080', '-e', 'cat']);
    const pid = podId(pod);
    /** A connection to the echo server, once a `cat` answers on it. */
    const open = async () => {
      const sock = await containerizer().portForward(pid, 8080);
      const chunks: Buffer[] = [];
      sock.on('data', (d: Buffer) => chunks.push(d));
      const ended = new Promise<void>((resolve, reject) => {
        sock.on('end', () => resolve());
        sock.on('error', reject);
      });
      sock.write('hello\n');
      await waitFor('the echo of hello', () => Buffer.concat(chunks).toString() === 'hello\n', 5000);
      chunks.length = 0;
      return {
        async roundTrip(data: Buffer): Promise<Buffer> {
          sock.end(data);
          await ended;
          sock.destroy();
          return Buffer.concat(chunks);
        },
      };
    };
    const first = await waitFor('the echo server', () => open().catch(() => undefined));
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const big = randomBytes(16 << 20);
    const back = await first.roundTrip(big);
    t.is(back.length, big.length);
    t.is(sha(back), sha(big));

    // busybox nc -ll listens with a backlog of 2: the connections are opened one after the
    // other (20 SYNs at once would overflow it), then all 20 carry data at the same time.
    const conns = [];
    for (let i = 0; i < 20; i++) conns.push(await open());
    const payloads = conns.map(() => randomBytes(256 * 1024));
    const echoed = await Promise.all(conns.map((c, i) => c.roundTrip(payloads[i]!)));
    t.deepEqual(echoed.map(sha), payloads.map(sha));

    const err = await t.throwsAsync(containerizer().portForward(pid, 8081));
    t.true(err instanceof StatusError);
    t.is((err as StatusError).status, Code.UNAVAILABLE);
    t.is(errnoOf((err as StatusError).cause), 'ECONNREFUSED');
  });

  test.serial('port-forward to a pod that is unknown is NOT_FOUND', async (t) => {
    const err = await t.throwsAsync(containerizer().portForward({ value: 'f'.repeat(64) }, 80));
    t.is((err as StatusError).status, Code.NOT_FOUND);
  });
}

// Attach lives in the launch helper, not the daemon: after a kill -9 and a restart of the daemon
// the same socket still serves the container.
if (isRoot()) {
  const d = new TestDaemon({ prefix: 'cri-mesos-attach-restart' });
  test.serial.before(async () => {
    await d.init();
  });
  test.after.always(async () => {
    await d.teardown();
  });

  const attachTo = async (pod: string, id: string) =>
    attachStreams(await connectAttach(containerDir(d.runtimeDir, { value: id, parent: { value: pod } }), RUNTIME_FILES.attachSock), {
      stdin: true,
      tty: false,
    });

  test.serial('attach after the daemon was killed with -9 and restarted', async (t: ExecutionContext) => {
    const sandbox = podConfig('attach-restart', {}, d.logDir);
    const pod = (await d.client.call('RunPodSandbox', { config: sandbox })).pod_sandbox_id as string;
    const { id } = await d.runContainer(pod, sandbox, 'echoer', ['sh', '-c', 'while read l; do echo "echo:$l"; done'], { stdin: true });
    const a = await attachTo(pod, id);
    const out = collector(a.stdout);
    await write(a.stdin, 'before\n');
    await out.until(/echo:before\n/);
    a.close();

    await d.kill9();
    await d.launch();
    const b = await attachTo(pod, id);
    const out2 = collector(b.stdout);
    await write(b.stdin, 'after\n');
    await out2.until(/echo:after\n/);
    b.close();
    const log = readFileSync(join(d.logDir, 'echoer', '0.log'), 'utf8');
    t.regex(log, /stdout F echo:before$/m);
    t.regex(log, /stdout F echo:after$/m);
    const s = await d.client.call('ContainerStatus', { container_id: id });
    t.is(s.status.state, 'CONTAINER_RUNNING');
    t.true(existsSync(join(containerDir(d.runtimeDir, { value: id, parent: { value: pod } }), RUNTIME_FILES.attachSock)));
  });
}

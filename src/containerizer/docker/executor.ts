// `cri-mesos docker-executor`: Mesos' mesos-docker-executor for one CRI container of a docker
// pod. Mode B: a subprocess of the daemon, in a session of its own, so it outlives a daemon
// restart as the launch helper does. Mode A (--docker-mesos-image): the same entry in a docker
// container of that image, with the Engine's socket, the runtime dir and the log dir mounted at
// the same paths; it writes its diagnostics to --executor-log then, as its stderr goes nowhere. It attaches to the created docker container, starts it,
// writes its stdout/stderr to the CRI log file in the CRI format (lines split at 16 KiB with P,
// the rest of an unfinished line flushed as P at the end), reopens the log on "reopen" from its
// control FIFO (ReopenContainerLog), and when the container has exited writes exit.json.
import { appendFileSync, closeSync, constants, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { dirname } from 'node:path';
import { Demux, Engine, rfc3339Nanos } from '../../docker/engine.js';
import { runtimeFile } from '../../paths.js';

/** CRI's limit of one log record (containerd's and the launch helper's): longer lines go in P chunks. */
export const MAX_LOG_LINE = 16 * 1024;

export interface ExecutorArgs {
  dockerHost: string;
  /** the docker container's id */
  container: string;
  /** the CRI container's runtime dir */
  runtimeDir: string;
  /** the CRI log file; '' discards the output */
  logPath: string;
  /** append diagnostics to this file instead of stderr (mode A) */
  executorLog?: string;
}

/** RFC 3339 with nanoseconds (the CRI log format's time stamp). */
function timestamp(): string {
  const ns = process.hrtime.bigint() - hrBase + epochBase;
  const secs = ns / 1_000_000_000n;
  const iso = new Date(Number(secs) * 1000).toISOString().slice(0, 19);
  return `${iso}.${(ns % 1_000_000_000n).toString().padStart(9, '0')}Z`;
}
const epochBase = BigInt(Date.now()) * 1_000_000n;
const hrBase = process.hrtime.bigint();

/** The CRI log writer: one per container, both streams. */
export class CriLog {
  private fd = -1;
  private readonly bufs: Record<'stdout' | 'stderr', Buffer> = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };

  constructor(
    private readonly path: string,
    private readonly diag: (msg: string) => void,
  ) {
    this.open();
  }

  private open(): void {
    if (!this.path) return;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      this.fd = openSync(this.path, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND, 0o640);
    } catch (err) {
      this.diag(`open log ${this.path}: ${(err as Error).message}`);
      this.fd = -1;
    }
  }

  reopen(): void {
    const old = this.fd;
    this.open();
    if (old >= 0) closeSync(old);
  }

  private record(stream: string, partial: boolean, data: Buffer): void {
    if (this.fd < 0) return;
    const head = Buffer.from(`${timestamp()} ${stream} ${partial ? 'P' : 'F'} `);
    try {
      writeSync(this.fd, Buffer.concat([head, data, Buffer.from('\n')]));
    } catch (err) {
      this.diag(`write log: ${(err as Error).message}`);
    }
  }

  write(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    let buf = this.bufs[stream].length ? Buffer.concat([this.bufs[stream], chunk]) : chunk;
    for (;;) {
      const nl = buf.indexOf(10);
      const avail = nl < 0 ? buf.length : nl;
      if (avail > MAX_LOG_LINE) {
        this.record(stream, true, buf.subarray(0, MAX_LOG_LINE));
        buf = buf.subarray(MAX_LOG_LINE);
        continue;
      }
      if (nl < 0) break;
      const len = nl > 0 && buf[nl - 1] === 13 ? nl - 1 : nl;
      this.record(stream, false, buf.subarray(0, len));
      buf = buf.subarray(nl + 1);
    }
    this.bufs[stream] = Buffer.from(buf);
  }

  flush(): void {
    for (const s of ['stdout', 'stderr'] as const) {
      if (this.bufs[s].length) this.record(s, true, this.bufs[s]);
      this.bufs[s] = Buffer.alloc(0);
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

export interface ExitFile {
  exitCode: number;
  /** ns since the epoch, decimal */
  finishedAt: string;
  oomKilled: boolean;
  message: string;
}

/** exit.json, written atomically (tmp + rename + fsync). */
export function writeExit(runtimeDir: string, exit: ExitFile): void {
  const file = runtimeFile(runtimeDir, 'exit');
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', 0o644);
  writeSync(fd, JSON.stringify(exit) + '\n');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, file);
}

export function readExit(runtimeDir: string): ExitFile | undefined {
  try {
    return JSON.parse(readFileSync(runtimeFile(runtimeDir, 'exit'), 'utf8')) as ExitFile;
  } catch {
    return undefined;
  }
}

export async function runExecutor(args: ExecutorArgs): Promise<number> {
  const diag = (msg: string) => {
    const line = `${new Date().toISOString()} docker-executor ${args.container.slice(0, 12)}: ${msg}\n`;
    if (!args.executorLog) process.stderr.write(line);
    else
      try {
        appendFileSync(args.executorLog, line);
      } catch {
        // nowhere left to say it
      }
  };
  const engine = new Engine(args.dockerHost);
  writeFileSync(runtimeFile(args.runtimeDir, 'executorPid'), `${process.pid}\n`);
  const log = new CriLog(args.logPath, diag);
  // Control lines: the FIFO is opened read-write, so it never reads EOF while the daemon is away.
  const ctlPath = runtimeFile(args.runtimeDir, 'ctlFifo');
  if (existsSync(ctlPath)) {
    const ctl = new Socket({ fd: openSync(ctlPath, constants.O_RDWR | constants.O_NONBLOCK), readable: true, writable: false });
    let pending = '';
    ctl.on('data', (d: Buffer | string) => {
      pending += d.toString();
      let i;
      while ((i = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, i).trim();
        pending = pending.slice(i + 1);
        if (line === 'reopen') log.reopen();
        else if (line) diag(`unknown control line "${line}"`);
      }
    });
    ctl.on('error', (err) => diag(`ctl.fifo: ${err.message}`));
    ctl.unref();
  }
  const info = await engine.inspectContainer(args.container);
  if (!info) {
    diag('the docker container is gone');
    return 1;
  }
  // Attached before the start, so no output is lost.
  const stream = await engine.hijack(`/containers/${args.container}/attach?stream=1&stdout=1&stderr=1`);
  const ended = new Promise<void>((resolve) => {
    // A tty container's stream is the terminal's, not multiplexed: all of it is stdout.
    const demux = new Demux((s, data) => log.write(s === 2 ? 'stderr' : 'stdout', data));
    stream.on('data', (c: Buffer) => (info.Config.Tty ? log.write('stdout', c) : demux.push(c)));
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', (err) => {
      diag(`attach stream: ${err.message}`);
      resolve();
    });
  });
  if (!info.State.Running && rfc3339Nanos(info.State.StartedAt) === '0') {
    try {
      await engine.start(args.container);
    } catch (err) {
      diag(`start: ${(err as Error).message}`);
      stream.destroy();
      writeExit(args.runtimeDir, { exitCode: 128, finishedAt: nowNs(), oomKilled: false, message: (err as Error).message });
      return 1;
    }
  }
  writeFileSync(runtimeFile(args.runtimeDir, 'started'), `${nowNs()}\n`);
  await ended;
  const code = await engine.wait(args.container).catch(() => -1);
  log.flush();
  log.close();
  const after = await engine.inspectContainer(args.container).catch(() => undefined);
  writeExit(args.runtimeDir, {
    exitCode: after?.State.ExitCode ?? code,
    finishedAt: after ? rfc3339Nanos(after.State.FinishedAt) : nowNs(),
    oomKilled: after?.State.OOMKilled ?? false,
    message: after?.State.Error ?? '',
  });
  diag(`container exited with ${after?.State.ExitCode ?? code}`);
  return 0;
}

function nowNs(): string {
  return (BigInt(Date.now()) * 1_000_000n).toString();
}

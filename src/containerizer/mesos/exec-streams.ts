// The daemon's side of a streaming exec (CRI Exec): the spawned process's pipes or terminal
// master as Node streams, its exit, and kill. The spawn itself is MesosContainerizer.exec.
import { closeSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { ReadStream } from 'node:tty';
import { native, type SpawnedChild } from '../../native/index.js';
import { errnoOf } from '../../errors.js';
import type { ExecHandle, ExecIO } from '../containerizer.js';

/** After the process exited, how long its output may still take to end (a background child can hold it). */
const OUTPUT_GRACE_MS = 2000;
/** Retry delay of a write to a full pipe or terminal (the fd is non-blocking). */
const WRITE_RETRY_MS = 5;

/**
 * The exit code and message of a command that could not be executed, as runc reports them
 * (127: not found, 126: found but not executable); undefined for any other spawn failure.
 */
export function execFailure(err: unknown, file: string): { code: number; message: string } | undefined {
  if ((err as { stage?: unknown }).stage !== 'exec') return undefined;
  const errno = errnoOf(err);
  const notFound = errno === 'ENOENT' || errno === 'ENOTDIR';
  const reason = notFound
    ? file.includes('/')
      ? 'no such file or directory'
      : 'executable file not found in $PATH'
    : errno === 'EACCES'
      ? 'permission denied'
      : ((err as Error).message.split(': ').pop() ?? 'exec failed');
  return { code: notFound ? 127 : 126, message: `exec failed: exec: "${file}": ${reason}\n` };
}

/** The handle of an exec whose command could not run: its message, then its code. */
export function failedExec(io: ExecIO, code: number, message: string): ExecHandle {
  const msgStream = io.stderr ? 'stderr' : 'stdout';
  const make = (name: 'stdout' | 'stderr') => {
    const s = new PassThrough();
    s.end(name === msgStream ? message : undefined);
    return s;
  };
  return {
    ...(io.stdin ? { stdin: new Writable({ write: (_c, _e, cb) => cb() }) } : {}),
    ...(io.stdout || io.tty ? { stdout: make('stdout') } : {}),
    ...(io.stderr ? { stderr: make('stderr') } : {}),
    resize: () => undefined,
    wait: () => Promise.resolve(code),
    kill: () => undefined,
  };
}

/**
 * SIGKILL to a spawned command's whole process group (spawn makes it a session leader, so the
 * children it forked go too) and, through its pidfd, to the leader even if the group is gone.
 * Only while it is not reaped: until then its pid and group are ours.
 */
export function killSessionLeader(child: Pick<SpawnedChild, 'pid' | 'pidfd'>): void {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // the group is gone; the pidfd below reaches the leader regardless
  }
  try {
    native().pidfdSendSignal(child.pidfd, 9);
  } catch {
    // exited meanwhile
  }
}

/** The process and its end: exit code once reaped, kill of its group until then. */
function processOf(child: SpawnedChild) {
  let reaped = false;
  const exited = native()
    .waitPidfd(child.pidfd)
    .then(
      (e) => (e.signal !== null ? 128 + e.signal : (e.exitCode ?? 255)),
      () => 255,
    )
    .finally(() => {
      reaped = true;
      native().close(child.pidfd);
    });
  const kill = () => {
    // Until it is reaped its pid (and so its process group, it is a session leader) is ours.
    if (!reaped) killSessionLeader(child);
  };
  return { exited, kill };
}

/** A readable that ends when `source` ends, or `graceMs` after `after` settled at the latest. */
function endingStream(source: Readable, after: Promise<unknown>, onEnd?: () => void): { stream: PassThrough; ended: Promise<void> } {
  const stream = new PassThrough();
  const ended = new Promise<void>((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      source.destroy();
      onEnd?.();
      stream.end();
      resolve();
    };
    source.on('data', (d: Buffer) => {
      if (!stream.write(d)) source.pause();
    });
    stream.on('drain', () => source.resume());
    source.on('end', finish);
    source.on('close', finish);
    // EIO on a terminal master is its end of file (every slave is closed).
    source.on('error', finish);
    void after.then(() => setTimeout(finish, OUTPUT_GRACE_MS).unref());
  });
  return { stream, ended };
}

/**
 * A Writable over a non-blocking fd that it owns: writes wait out EAGAIN, and once the process
 * is gone (EPIPE, EIO) or shut() was called, writes are accepted and dropped: a client that
 * still types after the exit must never make the stream fail. `onEnd` runs at end(), before
 * the fd closes.
 */
function fdWriter(fd: number, onEnd: (fd: number) => void): Writable & { fd(): number; shut(): void } {
  let open = true;
  const shut = () => {
    if (!open) return;
    open = false;
    closeSync(fd);
  };
  const writeAll = (buf: Buffer, cb: () => void) => {
    while (open && buf.length > 0) {
      try {
        buf = buf.subarray(writeSync(fd, buf));
      } catch (err) {
        if (errnoOf(err) === 'EAGAIN') {
          setTimeout(() => writeAll(buf, cb), WRITE_RETRY_MS);
          return;
        }
        shut(); // the reader is gone: what is written later goes nowhere
      }
    }
    cb();
  };
  const w = new Writable({
    write: (chunk: Buffer, _enc, cb) => writeAll(chunk, () => cb()),
    final: (cb) => {
      if (open) {
        try {
          onEnd(fd);
        } catch {
          // the process is gone
        }
      }
      shut();
      cb();
    },
    destroy: (_err, cb) => {
      shut();
      cb(null);
    },
  });
  w.on('error', () => undefined);
  return Object.assign(w, { fd: () => (open ? fd : -1), shut });
}

export function pipeExec(child: SpawnedChild, inW: number, outR: number, errR: number): ExecHandle {
  const proc = processOf(child);
  const ended: Promise<void>[] = [];
  const read = (fd: number) => {
    if (fd < 0) return undefined;
    const s = endingStream(new Socket({ fd, readable: true, writable: false }), proc.exited);
    ended.push(s.ended);
    return s.stream;
  };
  const stdout = read(outR);
  const stderr = read(errR);
  let stdin: ReturnType<typeof fdWriter> | undefined;
  if (inW >= 0) {
    native().setNonblocking(inW);
    // The end of stdin is the pipe's close: the process reads EOF.
    stdin = fdWriter(inW, () => undefined);
  }
  const done = proc.exited.then(async (code) => {
    await Promise.all(ended);
    stdin?.shut();
    return code;
  });
  return {
    ...(stdin ? { stdin } : {}),
    ...(stdout ? { stdout } : {}),
    ...(stderr ? { stderr } : {}),
    resize: () => undefined,
    wait: () => done,
    kill: proc.kill,
  };
}

/**
 * A tty exec. The master is read through a tty.ReadStream (it owns `master`); input and resize
 * go through a dup of it, so they never touch an fd number the reader may have closed.
 *
 * stdin's end: a terminal cannot be half-closed, as its master also carries the output.
 * containerd's shim closes the whole console once stdin ends, which hangs the session up; we
 * instead type the terminal's VEOF character (^D), as a user would: a reader in canonical mode
 * gets end of file and output keeps flowing. VEOF only ends a pending line, so after a partial
 * line it is sent twice. A program in raw mode sees a ^D byte.
 */
export function ttyExec(child: SpawnedChild, master: number, io: ExecIO): ExecHandle {
  const proc = processOf(child);
  const ctl = native().dup(master);
  native().setNonblocking(master);
  let lastByte = 0x0a;
  const writer = fdWriter(ctl, (fd) => {
    const eof = native().ttyEofChar(fd);
    writeSync(fd, Buffer.from(lastByte === 0x0a || lastByte === 0x0d ? [eof] : [eof, eof]));
  });
  const reader = endingStream(new ReadStream(master), proc.exited, () => writer.shut());
  const stdin = io.stdin
    ? new Writable({
        write(chunk: Buffer, enc, cb) {
          if (chunk.length) lastByte = chunk[chunk.length - 1]!;
          if (writer.writableEnded) return cb();
          writer.write(chunk, enc, () => cb());
        },
        final(cb) {
          writer.end(() => cb());
        },
      })
    : undefined;
  stdin?.on('error', () => undefined);
  if (!io.stdout) reader.stream.resume(); // the terminal must be read, or the process blocks on it
  const done = proc.exited.then(async (code) => {
    await reader.ended;
    writer.shut();
    return code;
  });
  return {
    ...(stdin ? { stdin } : {}),
    ...(io.stdout ? { stdout: reader.stream } : {}),
    resize(cols, rows) {
      const fd = writer.fd();
      if (fd >= 0) native().setWinsize(fd, Math.max(0, Math.min(65535, cols)), Math.max(0, Math.min(65535, rows)));
    },
    wait: () => done,
    kill: proc.kill,
  };
}

// The client side of the launch helper's attach socket (<container runtime dir>/attach.sock,
// served by addon/launch/launch.cc for as long as the container's command runs, also while
// the daemon is down or restarting).
//
// Protocol: a unix stream socket carrying frames, each
//
//   1 byte type | 4 bytes payload length, big-endian | payload (at most 1 MiB)
//
//   type  direction        payload
//   0     client → helper  stdin bytes (dropped when the container has no open stdin)
//   1     helper → client  stdout bytes (a tty container's terminal output is stdout)
//   2     helper → client  stderr bytes
//   3     helper → client  exit: the command's exit code, int32 big-endian (128+n for signal n);
//                          the helper closes the connection after it
//   4     client → helper  resize: cols uint16 BE, rows uint16 BE (TIOCSWINSZ; tty only)
//   5     client → helper  stdin close: ends the container's stdin if it is stdin_once
//                          (a pipe is closed; a terminal gets its VEOF character)
//
// Every client gets all output from the moment it connects (no replay; the CRI log has the
// past). A client that does not read loses frames once 1 MiB waits for it: it never slows
// the container or the log. With stdin_once, stdin also ends when the first client that
// wrote stdin disconnects. A frame of an unknown type, or too long, disconnects the client.
import { openSync, closeSync, constants as fsc } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { failedPrecondition, withContext, isAbsent } from '../../errors.js';
import type { AttachHandle } from '../containerizer.js';

export const FRAME = { stdin: 0, stdout: 1, stderr: 2, exit: 3, resize: 4, stdinClose: 5 } as const;
const MAX_FRAME = 1 << 20;

export function frame(type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

/**
 * Connects to an attach socket. The runtime dir may be longer than a unix socket path may be
 * (108 bytes), so the connection goes through /proc/self/fd/<dir fd>/<name>.
 */
export async function connectAttach(runtimeDir: string, socketName: string): Promise<Socket> {
  let dirFd: number;
  try {
    dirFd = openSync(runtimeDir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  } catch (err) {
    if (isAbsent(err)) throw failedPrecondition(`container runtime dir ${runtimeDir} is gone`, err);
    throw withContext(err, 'attach');
  }
  try {
    return await new Promise<Socket>((resolve, reject) => {
      const sock = createConnection(`/proc/self/fd/${dirFd}/${socketName}`);
      sock.once('connect', () => {
        sock.removeListener('error', reject);
        resolve(sock);
      });
      sock.once('error', reject);
    });
  } catch (err) {
    // No socket (ENOENT), or nobody listening (ECONNREFUSED): the helper has ended.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ECONNREFUSED') throw failedPrecondition('the container is not running (its attach socket is gone)', err);
    throw withContext(err, 'attach');
  } finally {
    closeSync(dirFd);
  }
}

/** The frames of an attach connection as streams. */
export function attachStreams(sock: Socket, opts: { stdin: boolean; tty: boolean }): AttachHandle {
  const stdout = new PassThrough();
  const stderr = opts.tty ? undefined : new PassThrough();
  let buf: Buffer = Buffer.alloc(0);
  let settle!: (code: number | null) => void;
  const exitCode = new Promise<number | null>((r) => (settle = r));
  const end = (code: number | null) => {
    settle(code);
    stdout.end();
    stderr?.end();
  };
  sock.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1);
      if (len > MAX_FRAME) {
        sock.destroy();
        return;
      }
      if (buf.length < 5 + len) break;
      const type = buf[0];
      const payload = buf.subarray(5, 5 + len);
      buf = buf.subarray(5 + len);
      if (type === FRAME.stdout) stdout.write(payload);
      else if (type === FRAME.stderr) (stderr ?? stdout).write(payload);
      else if (type === FRAME.exit && len === 4) end(payload.readInt32BE(0));
    }
  });
  // A reset or a helper that went away ends the streams like a close does.
  sock.on('error', () => undefined);
  sock.on('close', () => end(null));
  const stdin = opts.stdin
    ? new Writable({
        write(chunk: Buffer, _enc, cb) {
          // Frames of at most 64 KiB, so one large write never meets the 1 MiB frame limit.
          for (let i = 0; i < chunk.length; i += 65536) sock.write(frame(FRAME.stdin, chunk.subarray(i, i + 65536)));
          cb();
        },
        final(cb) {
          if (!sock.destroyed) sock.write(frame(FRAME.stdinClose));
          cb();
        },
      })
    : undefined;
  return {
    ...(stdin ? { stdin } : {}),
    stdout,
    ...(stderr ? { stderr } : {}),
    resize(cols, rows) {
      const p = Buffer.alloc(4);
      p.writeUInt16BE(Math.max(0, Math.min(65535, cols)), 0);
      p.writeUInt16BE(Math.max(0, Math.min(65535, rows)), 2);
      if (!sock.destroyed) sock.write(frame(FRAME.resize, p));
    },
    close() {
      sock.end();
      // Whatever the helper still sends is of no interest once detached.
      setTimeout(() => sock.destroy(), 1000).unref();
    },
    exitCode,
  };
}

// CRI streaming for docker containers, through the Engine: Exec is an exec instance started on a
// hijacked connection (stdin/stdout/stderr multiplexed, or raw for a tty), its size set by
// /exec/<id>/resize and its exit code read from the exec's inspect; Attach is the Engine's attach
// to the container's own stdio, resized by /containers/<id>/resize. The hijacked socket carries
// stdin one way and the output the other; ending stdin half-closes it (the Engine then closes
// the process's stdin), or sends VEOF (^D) to a terminal.
import { PassThrough, Writable } from 'node:stream';
import type { Socket } from 'node:net';
import type { AttachHandle, ExecHandle, ExecIO } from '../containerizer.js';
import { Demux, type Engine } from '../../docker/engine.js';

const VEOF = Buffer.from([4]);

/** The process's output from a hijacked socket: raw for a tty, demultiplexed otherwise. */
function outputs(sock: Socket, tty: boolean): { stdout: PassThrough; stderr?: PassThrough } {
  const stdout = new PassThrough();
  const stderr = tty ? undefined : new PassThrough();
  const demux = tty ? undefined : new Demux((s, d) => (s === 2 ? stderr! : stdout).write(Buffer.from(d)));
  sock.on('data', (c: Buffer) => (demux ? demux.push(c) : stdout.write(c)));
  const end = () => {
    stdout.end();
    stderr?.end();
  };
  sock.once('end', end);
  sock.once('close', end);
  sock.once('error', end);
  return { stdout, ...(stderr ? { stderr } : {}) };
}

/** stdin into the hijacked socket; end() half-closes it, or types ^D into a terminal. */
function input(sock: Socket, tty: boolean): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (sock.destroyed || !sock.writable) return cb();
      sock.write(chunk, () => cb());
    },
    final(cb) {
      if (!sock.destroyed && sock.writable) {
        if (tty) sock.write(VEOF);
        else sock.end();
      }
      cb();
    },
  });
}

/** An exec in a running docker container. */
export async function dockerExec(engine: Engine, dockerId: string, argv: string[], io: ExecIO): Promise<ExecHandle> {
  const created = await engine.call<{ Id: string }>('POST', `/containers/${dockerId}/exec`, {
    body: { Cmd: argv, AttachStdin: io.stdin, AttachStdout: io.stdout || io.tty, AttachStderr: io.stderr && !io.tty, Tty: io.tty },
  });
  const execId = created.body.Id;
  const sock = await engine.hijack(`/exec/${execId}/start`, { Detach: false, Tty: io.tty });
  sock.setNoDelay?.(true);
  const out = outputs(sock, io.tty);
  const ended = new Promise<void>((resolve) => {
    sock.once('close', () => resolve());
    sock.once('end', () => resolve());
    sock.once('error', () => resolve());
  });
  let exitCode: number | undefined;
  const inspect = () => engine.call<{ Running: boolean; ExitCode: number | null; Pid: number }>('GET', `/exec/${execId}/json`);
  const done = ended.then(async () => {
    // The stream ends when the process's output does; the Engine records the exit just after.
    for (let i = 0; i < 250; i++) {
      const r = await inspect().catch(() => undefined);
      if (r && !r.body.Running && r.body.ExitCode !== null) return (exitCode = r.body.ExitCode);
      await new Promise((res) => setTimeout(res, 20));
    }
    return (exitCode = 137);
  });
  return {
    ...(io.stdin ? { stdin: input(sock, io.tty) } : {}),
    ...(io.stdout || io.tty ? { stdout: out.stdout } : {}),
    ...(out.stderr && io.stderr ? { stderr: out.stderr } : {}),
    resize(cols: number, rows: number) {
      if (!io.tty || exitCode !== undefined) return;
      void engine.call('POST', `/exec/${execId}/resize?h=${rows}&w=${cols}`).catch(() => undefined);
    },
    wait: () => done,
    kill() {
      if (exitCode !== undefined) return;
      // The exec's process (its host pid) and its group, if it leads one; then the stream.
      void inspect()
        .then((r) => {
          if (!r.body.Running || !(r.body.Pid > 0)) return;
          for (const target of [-r.body.Pid, r.body.Pid]) {
            try {
              process.kill(target, 'SIGKILL');
            } catch {
              // no such group, or gone
            }
          }
        })
        .catch(() => undefined)
        .finally(() => setTimeout(() => sock.destroy(), 200).unref());
    },
  };
}

/** An attach to a docker container's own stdio; `exited` settles with its exit code when it ends. */
export async function dockerAttach(
  engine: Engine,
  dockerId: string,
  opts: { tty: boolean; stdin: boolean },
  exited: Promise<number | null>,
): Promise<AttachHandle> {
  const q = new URLSearchParams({ stream: '1', stdout: '1', stderr: '1', ...(opts.stdin ? { stdin: '1' } : {}) });
  const sock = await engine.hijack(`/containers/${dockerId}/attach?${q}`);
  sock.setNoDelay?.(true);
  const out = outputs(sock, opts.tty);
  return {
    ...(opts.stdin ? { stdin: input(sock, opts.tty) } : {}),
    stdout: out.stdout,
    ...(out.stderr ? { stderr: out.stderr } : {}),
    resize(cols: number, rows: number) {
      if (!opts.tty) return;
      void engine.call('POST', `/containers/${dockerId}/resize?h=${rows}&w=${cols}`).catch(() => undefined);
    },
    close() {
      sock.destroy();
    },
    exitCode: exited,
  };
}

// The runtime side of CRI streaming: what the stream server (src/stream) calls once a client
// has connected to an Exec, Attach or PortForward URL. It wires the client's streams to the
// containerizer's exec, attach and port-forward, and owns their lifetime: a client that goes
// away takes its exec'd process with it; an attach only detaches.
import type { Duplex, Readable, Writable } from 'node:stream';
import type { ExecRequest__Output } from '../../../api/generated/runtime/v1/ExecRequest.js';
import type { AttachRequest__Output } from '../../../api/generated/runtime/v1/AttachRequest.js';
import type { ExitStatus, Runtime, StreamIO } from '../../stream/server.js';
import { failedPrecondition, withContext } from '../../errors.js';
import { containerId, podId, type RuntimeContext } from '../context.js';
import { mustContainer, mustSandbox } from '../runtime/common.js';

export function streamRuntime(ctx: RuntimeContext): Runtime {
  return {
    async exec(req: ExecRequest__Output, io: StreamIO): Promise<ExitStatus> {
      const c = mustContainer(ctx, req.container_id);
      if (c.state !== 'CONTAINER_RUNNING') throw failedPrecondition(`container ${c.id} is not running`);
      const h = await ctx.containerizer
        .exec(containerId(c), req.cmd, c.process, { tty: io.tty, stdin: !!io.stdin, stdout: !!io.stdout, stderr: !!io.stderr })
        .catch((err) => {
          throw withContext(err, `exec in container ${c.id}`);
        });
      // The client gone means nobody will read or end the command: kill it (its whole group).
      io.onClose(() => h.kill());
      feed(io.stdin, h.stdin);
      const out = drain(h.stdout, io.stdout);
      const err = drain(h.stderr, io.stderr);
      void resizeFrom(io, h.resize.bind(h));
      const exitCode = await h.wait();
      await Promise.all([out, err]);
      ctx.log.info('exec ended', { container: c.id, exitCode });
      return { exitCode };
    },

    async attach(req: AttachRequest__Output, io: StreamIO): Promise<void> {
      const c = mustContainer(ctx, req.container_id);
      if (c.state !== 'CONTAINER_RUNNING') throw failedPrecondition(`container ${c.id} is not running`);
      const h = await ctx.containerizer.attach(containerId(c));
      io.onClose(() => h.close());
      // Without stdin asked for, the attach only watches: its end must not end the container's stdin.
      if (io.stdin && h.stdin) feed(io.stdin, h.stdin);
      const out = drain(h.stdout, io.stdout);
      const err = drain(h.stderr, io.stderr);
      void resizeFrom(io, h.resize.bind(h));
      // Attached until the container's command ends or the client leaves.
      await Promise.race([h.exitCode, new Promise<void>((resolve) => io.onClose(resolve))]);
      await Promise.race([Promise.all([out, err]), new Promise<void>((resolve) => io.onClose(resolve))]);
      h.close();
    },

    async portForward(podSandboxId: string, port: number): Promise<Duplex> {
      const s = mustSandbox(ctx, podSandboxId);
      if (s.state !== 'SANDBOX_READY') throw failedPrecondition(`pod sandbox ${s.id} is not ready`);
      return ctx.containerizer.portForward(podId(s.id), port);
    },
  };
}

/** The client's input into the process; the client's half-close ends the process's input. */
function feed(from: Readable | null, to: Writable | undefined): void {
  if (!from || !to) {
    from?.resume();
    return;
  }
  // The process may exit (EPIPE) before the client stops typing.
  to.on('error', () => from.unpipe(to));
  from.pipe(to);
}

/** The process's output to the client, without ending the client's stream (done() does). */
function drain(from: Readable | undefined, to: Writable | null): Promise<void> {
  if (!from) return Promise.resolve();
  if (!to) {
    from.resume();
    return new Promise((resolve) => from.once('close', resolve).once('end', resolve));
  }
  return new Promise((resolve) => {
    from.pipe(to, { end: false });
    from.once('end', resolve);
    from.once('close', resolve);
    from.once('error', () => resolve());
    to.once('error', () => {
      from.unpipe(to);
      from.resume();
    });
  });
}

async function resizeFrom(io: StreamIO, resize: (cols: number, rows: number) => void): Promise<void> {
  if (!io.resize) return;
  try {
    for await (const s of io.resize) resize(s.width, s.height);
  } catch {
    // a broken resize stream ends resizing, not the session
  }
}

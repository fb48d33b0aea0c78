// Programs the daemon starts without forking itself: startProgram (the Docker mode-B executor), and
// runProgram for one run of a short-lived one (CNI plugins, the pre-launch hook): input on stdin,
// stdout and stderr collected, exit status, a timeout.
//
// Why not node:child_process: libuv (1.46 in Node 20) forks, which copies the daemon's page
// tables and write-protects its malloc'd memory (the parent faults on each page it writes next).
// On the development VM every first touch of a page costs 13-25 µs (hack/bench/README.md, "Page
// faults"), so a fork is dear: running /usr/lib/cni/loopback from an 89 MB Node process took 21.5
// ms through child_process against 14.2 through the addon (hack/bench/spawn-cost.ts), whose spawn
// shares the daemon's memory until the exec (CLONE_VM|CLONE_VFORK, as posix_spawn).
import { Socket } from 'node:net';
import { constants } from 'node:os';
import { native, type ExitInfo } from './index.js';

export interface RunOptions {
  /** KEY=VALUE: the program gets exactly these. */
  env: Record<string, string>;
  cwd?: string;
  /** written to its stdin, which is then closed */
  input: string;
  /** at the timeout the program's process group is killed (SIGKILL) */
  timeoutMs: number;
  /** more than this on stdout: the group is killed and `tooMuchOutput` set (default: no limit) */
  maxStdout?: number;
  /** stderr beyond this is dropped (default: no limit) */
  maxStderr?: number;
  /**
   * When the program exits, kill what it left in its group. Without it, the output is read
   * until every writer has closed it or `drainMs` after the exit, whichever comes first.
   */
  killGroupOnExit?: boolean;
  /** default 1000 */
  drainMs?: number;
}

export interface RunResult {
  /** exit status, null when killed by a signal */
  code: number | null;
  /** e.g. SIGKILL */
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
  tooMuchOutput: boolean;
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

export interface StartedProgram {
  pid: number;
  /** resolves once it has exited and been reaped */
  exited: Promise<ExitInfo>;
}

/**
 * Starts `argv` (argv[0] is `file`, a path) with exactly `env`, in a session and process group of
 * its own, through the addon's spawn. The caller closes its copies of the `stdio` fds. Rejects when
 * it cannot be started (the error's `code` is the errno name: ENOENT, EACCES; its message starts
 * with it).
 */
export async function startProgram(o: { file: string; argv: string[]; env: NodeJS.ProcessEnv; stdio: [number, number, number]; cwd?: string }): Promise<StartedProgram> {
  const n = native();
  let child;
  try {
    const held = await n.spawnHeld({
      file: o.file,
      argv: o.argv,
      env: Object.entries(o.env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`])),
      cloneNamespaces: [],
      joinNamespaces: [],
      stdio: o.stdio,
      ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
      setsid: true,
    });
    child = await n.release(held);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code && err instanceof Error && !err.message.startsWith(code)) err.message = `${code}: ${err.message}`;
    throw err;
  }
  const { pid, pidfd } = child;
  return { pid, exited: n.waitPidfd(pidfd).finally(() => n.close(pidfd)) };
}

/**
 * Runs `file` (an absolute path) with argv [file] (startProgram). Rejects only when it cannot be
 * started; every way it ends is in the result.
 */
export async function runProgram(file: string, o: RunOptions): Promise<RunResult> {
  const n = native();
  const [inR, inW] = n.pipe();
  const [outR, outW] = n.pipe();
  const [errR, errW] = n.pipe();
  let child: StartedProgram;
  try {
    child = await startProgram({ file, argv: [file], env: o.env, stdio: [inR, outW, errW], ...(o.cwd !== undefined ? { cwd: o.cwd } : {}) });
  } catch (err) {
    for (const fd of [inW, outR, errR]) n.close(fd);
    throw err;
  } finally {
    // the child has its own copies
    for (const fd of [inR, outW, errW]) n.close(fd);
  }

  let timedOut = false;
  let tooMuchOutput = false;
  const killGroup = () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // ESRCH: nothing left in the group
    }
  };
  const stdin = new Socket({ fd: inW, readable: false, writable: true });
  stdin.on('error', () => undefined); // a program that exits without reading its stdin
  stdin.end(o.input);

  const out = pipeReader(outR, {
    limit: o.maxStdout,
    onLimit: () => {
      tooMuchOutput = true;
      killGroup();
    },
  });
  const err = pipeReader(errR, { keep: o.maxStderr });
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, o.timeoutMs);
  let exit;
  try {
    exit = await child.exited;
  } catch (e) {
    // not watchable: do not keep its pipes open
    stdin.destroy();
    await Promise.all([out.done(0), err.done(0)]);
    throw e;
  } finally {
    clearTimeout(timer);
  }
  if (o.killGroupOnExit) killGroup();
  const drainMs = o.drainMs ?? 1000;
  const [stdout, stderr] = await Promise.all([out.done(drainMs), err.done(drainMs)]);
  stdin.destroy();
  return {
    code: exit.signal !== null ? null : exit.exitCode,
    signal: exit.signal !== null ? (SIGNAL_NAMES.get(exit.signal) ?? (`SIG${exit.signal}` as NodeJS.Signals)) : null,
    stdout,
    stderr,
    timedOut,
    tooMuchOutput,
  };
}

/**
 * What is read from `fd` (a pipe's read end; `done` closes it) until EOF or `done`'s grace: past `limit`
 * bytes in all, `onLimit` is called and nothing more kept; past `keep` bytes, the rest is dropped.
 */
export function pipeReader(fd: number, { limit, onLimit, keep }: { limit?: number; onLimit?: () => void; keep?: number } = {}) {
  const chunks: Buffer[] = [];
  let total = 0;
  let kept = 0;
  const sock = new Socket({ fd, readable: true, writable: false });
  const ended = new Promise<void>((resolve) => {
    sock.on('data', (d: Buffer) => {
      total += d.length;
      if (limit !== undefined && total > limit) {
        onLimit?.();
        return;
      }
      if (keep !== undefined) {
        if (kept >= keep) return;
        d = d.subarray(0, keep - kept);
      }
      kept += d.length;
      chunks.push(d);
    });
    sock.on('end', resolve);
    sock.on('close', resolve);
    sock.on('error', () => resolve());
  });
  return {
    async done(graceMs: number): Promise<Buffer> {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ended, new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      if (timer) clearTimeout(timer);
      sock.destroy();
      return Buffer.concat(chunks);
    },
  };
}

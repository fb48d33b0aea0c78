// StopContainer's timeout semantics and ExecSync's output/exit code/timeout/user/cwd,
// measured over the socket against real processes.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { podConfig, containerConfig, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';

const IGNORES_TERM = ['sh', '-c', 'trap "" TERM; while true; do sleep 1; done'];

const d = useDaemon('stop/exec tests');
if (d) {
  let pod: string;
  let sandbox: ReturnType<typeof podConfig>;
  test.serial.before(async () => {
    sandbox = podConfig('stop-exec');
    pod = (await d.client.call('RunPodSandbox', { config: sandbox })).pod_sandbox_id;
  });

  const run = (name: string, command: string[], extra: Record<string, unknown> = {}) => d.runContainer(pod, sandbox, name, command, extra);

  const stop = async (id: string, timeout: number): Promise<number> => {
    const t0 = performance.now();
    await d.client.call('StopContainer', { container_id: id, timeout });
    return performance.now() - t0;
  }

  const status = async (id: string) => {
    return (await d.client.call('ContainerStatus', { container_id: id })).status;
  }

  const exec = async (id: string, cmd: string[], timeout = 10) => {
    const r = await d.client.call('ExecSync', { container_id: id, cmd, timeout });
    return { stdout: Buffer.from(r.stdout).toString(), stderr: Buffer.from(r.stderr).toString(), exit_code: r.exit_code as number };
  }

  const alive = (pid: number) => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(safeRead(`/proc/${pid}/status`));

  test.serial('StopContainer with timeout 2 on a process ignoring SIGTERM kills it after the timeout (137)', async (t) => {
    const c = await run('ignore-term', IGNORES_TERM);
    // Let the shell install its trap before we signal.
    await new Promise((r) => setTimeout(r, 300));
    const ms = await stop(c.id, 2);
    t.true(ms >= 1900, `returned after ${ms} ms, before the grace period`);
    t.true(ms < 3000, `took ${ms} ms`);
    const st = await status(c.id);
    t.is(st.state, 'CONTAINER_EXITED');
    t.is(st.exit_code, 137);
    t.not(st.reason, 'OOMKilled');
    t.true(BigInt(st.finished_at) >= BigInt(st.started_at));
    t.false(alive(c.pid));
  });

  test.serial('StopContainer with timeout 0 kills at once', async (t) => {
    const c = await run('kill-now', IGNORES_TERM);
    await new Promise((r) => setTimeout(r, 300));
    const ms = await stop(c.id, 0);
    t.true(ms < 1000, `took ${ms} ms`);
    const st = await status(c.id);
    t.is(st.state, 'CONTAINER_EXITED');
    t.is(st.exit_code, 137);
    t.false(alive(c.pid));
  });

  test.serial('a process that is not PID 1 exits on SIGTERM quickly with 143', async (t) => {
    // pid POD: the pod's pause helper is PID 1, so SIGTERM's default action ends sleep.
    const c = await run('term-default', ['sleep', '3600'], { linux: { security_context: { namespace_options: { pid: 'POD' } } } });
    const ms = await stop(c.id, 10);
    t.true(ms < 2000, `took ${ms} ms`);
    const st = await status(c.id);
    t.is(st.state, 'CONTAINER_EXITED');
    t.is(st.exit_code, 143);
    t.is(st.reason, 'Error');
  });

  test.serial('a stop whose SIGTERM reaches the helper together with the start byte starts the command and stops it with SIGTERM (143)', async (t) => {
    // StartContainer answers once the start byte is in the exec FIFO, and a StopContainer may
    // follow at once: the helper can then find both in one wakeup. Stopping the helper makes
    // that certain. It must run the command and forward SIGTERM, not kill it unstarted (137).
    const { container_id: id } = await d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('term-with-start', ['sleep', '3600'], { linux: { security_context: { namespace_options: { pid: 'POD' } } } }),
      sandbox_config: sandbox,
    });
    // Its init is forked behind CreateContainer's answer.
    const info = await waitFor('the container init', async () => {
      const i = JSON.parse((await d.client.call('ContainerStatus', { container_id: id, verbose: true })).info.info) as { pid?: number };
      return i.pid ? (i as { pid: number }) : undefined;
    });
    const helper = Number(readFileSync(`/proc/${info.pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ')[1]);
    t.true(helper > 1, `the helper is the parent of ${info.pid}`);
    process.kill(helper, 'SIGSTOP');
    let stopped: Promise<number>;
    try {
      await d.client.call('StartContainer', { container_id: id });
      stopped = stop(id, 10);
      // The daemon's SIGTERM is pending in the stopped helper once /proc shows it.
      const termPending = () => {
        const m = /^ShdPnd:\s*([0-9a-f]+)$/m.exec(safeRead(`/proc/${helper}/status`));
        return m && (BigInt(`0x${m[1]}`) >> 14n) & 1n ? true : undefined;
      };
      await waitFor('SIGTERM pending in the helper', async () => termPending());
    } finally {
      process.kill(helper, 'SIGCONT');
    }
    const ms = await stopped;
    t.true(ms < 2000, `took ${ms} ms`);
    const st = await status(id);
    t.is(st.state, 'CONTAINER_EXITED');
    t.is(st.exit_code, 143);
  });

  test.serial('as PID 1 of its own PID namespace a command without a SIGTERM handler is killed after the grace period, as with runc', async (t) => {
    const c = await run('term-pid1', ['sleep', '3600']);
    const ms = await stop(c.id, 1);
    t.true(ms >= 900, `returned after ${ms} ms: the kernel does not apply SIGTERM's default action to a namespace's init`);
    t.is((await status(c.id)).exit_code, 137);
  });

  test.serial('a stop right after start reaches a PID 1 that is still starting, once it handles SIGTERM', async (t) => {
    // Sent before exec, or before the shell has set its trap, the kernel would drop SIGTERM for a
    // namespace's init; the helper holds it until the command handles it.
    for (let i = 0; i < 10; i++) {
      const { container_id: id } = await d.client.call('CreateContainer', {
        pod_sandbox_id: pod,
        config: containerConfig(`early-stop-${i}`, ['sh', '-c', 'trap "exit 7" TERM; while true; do sleep 0.1; done']),
        sandbox_config: sandbox,
      });
      await d.client.call('StartContainer', { container_id: id });
      const ms = await stop(id, 10);
      t.true(ms < 3000, `round ${i} took ${ms} ms`);
      t.is((await status(id)).exit_code, 7, `round ${i}`);
    }
  });

  test.serial('a SIGTERM handler that exits with its own code keeps that code', async (t) => {
    const c = await run('term-handler', ['sh', '-c', 'trap "exit 7" TERM; while true; do sleep 0.1; done']);
    await new Promise((r) => setTimeout(r, 300));
    const ms = await stop(c.id, 10);
    t.true(ms < 2000, `took ${ms} ms`);
    const st = await status(c.id);
    t.is(st.state, 'CONTAINER_EXITED');
    t.is(st.exit_code, 7);
  });

  test.serial('StopContainer is idempotent on an exited container and OK for an unknown id', async (t) => {
    const c = await run('twice', ['sleep', '3600']);
    await stop(c.id, 0);
    const first = await status(c.id);
    await stop(c.id, 5);
    const second = await status(c.id);
    t.is(second.state, 'CONTAINER_EXITED');
    t.is(second.exit_code, first.exit_code);
    t.is(second.finished_at, first.finished_at);
    await t.notThrowsAsync(d.client.call('StopContainer', { container_id: 'a'.repeat(64), timeout: 1 }));
  });

  test.serial('ExecSync returns stdout, stderr and the exit code', async (t) => {
    const c = await run('exec-out', ['sleep', '3600']);
    try {
      const r = await exec(c.id, ['sh', '-c', 'echo out; echo err >&2; exit 5']);
      t.is(r.stdout, 'out\n');
      t.is(r.stderr, 'err\n');
      t.is(r.exit_code, 5);
      const ok = await exec(c.id, ['true']);
      t.is(ok.exit_code, 0);
      t.is(ok.stdout, '');
      // Exit by signal: 128 + n, as a shell reports it.
      const killed = await exec(c.id, ['sh', '-c', 'kill -9 $$']);
      t.is(killed.exit_code, 137);
      // Large output arrives whole.
      const big = await exec(c.id, ['sh', '-c', 'head -c 300000 /dev/zero | tr "\\0" x']);
      t.is(big.stdout.length, 300000);
    } finally {
      await stop(c.id, 0);
    }
  });

  test.serial('ExecSync is killed at its timeout with DEADLINE_EXCEEDED, and the container keeps running', async (t) => {
    const c = await run('exec-timeout', ['sleep', '3600']);
    try {
      const t0 = performance.now();
      const err = await t.throwsAsync(exec(c.id, ['sleep', '30'], 1));
      const ms = performance.now() - t0;
      t.is((err as { code?: number }).code, 4, String(err));
      t.true(ms < 2500, `took ${ms} ms`);
      t.is((await status(c.id)).state, 'CONTAINER_RUNNING');
      // The timed-out command is gone: no "sleep 30" left in the container.
      const ps = await waitFor('exec process killed', async () => {
        const r = await exec(c.id, ['ps', '-o', 'args']);
        return /sleep 30/.test(r.stdout) ? undefined : r.stdout;
      }, 5000);
      t.notRegex(ps, /sleep 30/);
    } finally {
      await stop(c.id, 0);
    }
  });

  test.serial('an ExecSync timeout kills the command\'s children too', async (t) => {
    const c = await run('exec-timeout-tree', ['sleep', '3600']);
    try {
      const t0 = performance.now();
      // The shell forks sleep (the trailing echo keeps ash from exec'ing it); the child holds the pipes.
      const err = await t.throwsAsync(exec(c.id, ['sh', '-c', 'sleep 31; echo done'], 1));
      const ms = performance.now() - t0;
      t.is((err as { code?: number }).code, 4, String(err));
      t.true(ms < 2500, `took ${ms} ms`);
      const ps = await waitFor('exec children killed', async () => {
        const r = await exec(c.id, ['ps', '-o', 'args']);
        return /sleep 31/.test(r.stdout) ? undefined : r.stdout;
      }, 5000).catch(async () => (await exec(c.id, ['ps', '-o', 'args'])).stdout);
      t.notRegex(ps, /sleep 31/);
    } finally {
      await stop(c.id, 0);
    }
  });

  test.serial('ExecSync runs as the container user in its working directory with its environment', async (t) => {
    const c = await run('exec-user', ['sleep', '3600'], {
      working_dir: '/tmp',
      envs: [{ key: 'GREETING', value: Buffer.from('hello') }],
      linux: { security_context: { run_as_user: { value: 1000 } } },
    });
    try {
      // The container's own command runs as 1000 too.
      const owner = await exec(c.id, ['sh', '-c', 'for p in /proc/[0-9]*; do [ "$(tr "\\0" " " < $p/cmdline)" = "sleep 3600 " ] && stat -c %u $p; done; true']);
      t.is(owner.stdout.trim(), '1000', owner.stderr);
      const uid = await exec(c.id, ['id', '-u']);
      t.is(uid.stdout.trim(), '1000');
      t.is((await exec(c.id, ['id', '-g'])).stdout.trim(), '1000');
      t.is((await exec(c.id, ['pwd'])).stdout.trim(), '/tmp');
      t.is((await exec(c.id, ['sh', '-c', 'echo $GREETING'])).stdout.trim(), 'hello');
      t.is((await exec(c.id, ['sh', '-c', 'echo $HOSTNAME'])).stdout.trim(), 'stop-exec');
      // ExecSync on a container that is not running is refused.
      await stop(c.id, 0);
      const err = await t.throwsAsync(exec(c.id, ['true']));
      t.is((err as { code?: number }).code, 9, String(err));
    } finally {
      await stop(c.id, 0);
    }
  });

  test.serial('ExecSync as root in a root container, cwd defaulting to /', async (t) => {
    const c = await run('exec-root', ['sleep', '3600']);
    try {
      t.is((await exec(c.id, ['id', '-u'])).stdout.trim(), '0');
      t.is((await exec(c.id, ['pwd'])).stdout.trim(), '/');
    } finally {
      await stop(c.id, 0);
    }
  });
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

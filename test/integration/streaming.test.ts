// CRI Exec, Attach and PortForward end to end, as kubelet and crictl drive them: the gRPC call
// over the socket hands out a URL, then the project's own client speaks SPDY/3.1 or WebSocket
// to the stream server, against real containers in a real pod. Root only (useDaemon).
import test from 'ava';
import { status } from '@grpc/grpc-js';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { podConfig, containerConfig, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';
import { collect, exitCodeOf, HttpError, spdyExec, spdyPortForward, tunnelPortForward, wsExec, type ExecClient } from '../helpers/stream-client.js';

const d = useDaemon('streaming tests');

/** Text of a stream as it arrives; until() waits for a pattern. */
function watch(r: Readable | null) {
  let text = '';
  r?.on('data', (b: Buffer) => (text += b.toString()));
  return { text: () => text, until: (re: RegExp) => waitFor(`${re} in ${JSON.stringify(text.slice(-200))}`, () => re.test(text), 15_000) };
}

/** Host pids whose command line contains `marker`. */
function pidsWith(marker: string): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        return readFileSync(`/proc/${n}/cmdline`, 'utf8').includes(marker);
      } catch {
        return false;
      }
    })
    .map(Number);
}

if (d) {
  let pod: string;
  let sandbox: ReturnType<typeof podConfig>;
  let ticker: string;
  const logDir = mkdtempSync(join(tmpdir(), 'cri-mesos-streaming-logs-'));
  test.after.always(() => rmSync(logDir, { recursive: true, force: true }));
  test.serial.before(async () => {
    sandbox = podConfig('streaming', {}, logDir);
    pod = (await d.client.call('RunPodSandbox', { config: sandbox })).pod_sandbox_id;
    ({ id: ticker } = await d.runContainer(pod, sandbox, 'ticker', ['sh', '-c', 'i=0; while true; do echo tick $i; echo tock $i >&2; i=$((i+1)); sleep 0.2; done']));
  });

  const execUrl = async (cmd: string[], o: { stdin?: boolean; stdout?: boolean; stderr?: boolean; tty?: boolean }, container = ticker) =>
    (await d.client.call('Exec', { container_id: container, cmd, stdin: !!o.stdin, stdout: o.stdout ?? true, stderr: o.stderr ?? !o.tty, tty: !!o.tty })).url as string;

  const finish = async (c: ExecClient) => {
    const [out, err, st] = await Promise.all([c.stdout ? collect(c.stdout) : Buffer.alloc(0), c.stderr ? collect(c.stderr) : Buffer.alloc(0), c.status]);
    return { out: out.toString(), err: err.toString(), code: exitCodeOf(st), status: st };
  };

  test.serial('Exec over SPDY: stdout, stderr and exit codes 0 and 7; the URL is on the loopback stream server', async (t) => {
    const url = await execUrl(['sh', '-c', 'echo out; echo err >&2; exit 7'], { stdout: true, stderr: true });
    t.regex(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]+$/);
    const r = await finish(await spdyExec(url, { stdout: true, stderr: true }));
    t.is(r.out, 'out\n');
    t.is(r.err, 'err\n');
    t.is(r.code, 7);
    t.regex(r.status, /"reason":"NonZeroExitCode"/);
    const ok = await finish(await spdyExec(await execUrl(['true'], {}), { stdout: true, stderr: true }));
    t.is(ok.code, 0);
    t.regex(ok.status, /"status":"Success"/);
  });

  test.serial('Exec: stdin is echoed, and closing it is EOF for the command', async (t) => {
    for (const transport of ['spdy', 'websocket'] as const) {
      const url = await execUrl(['sh', '-c', 'cat; echo after-eof'], { stdin: true, stdout: true, stderr: true });
      const c = transport === 'spdy' ? await spdyExec(url, { stdin: true, stdout: true, stderr: true }) : await wsExec(url, { stdin: true, stdout: true, stderr: true });
      const payload = randomBytes(300_000).toString('hex');
      c.stdin!.end(payload);
      const r = await finish(c);
      t.is(r.out, payload + 'after-eof\n', transport);
      t.is(r.code, 0, transport);
    }
  });

  test.serial('Exec with a tty: a terminal from the container devpts, resize shows in stty size', async (t) => {
    const url = await execUrl(['sh'], { stdin: true, stdout: true, tty: true });
    const c = await spdyExec(url, { stdin: true, stdout: true, tty: true });
    const out = watch(c.stdout);
    c.resize(123, 45);
    await sleep(200);
    c.stdin!.write('tty; stty size; exit 3\n');
    await out.until(/45 123/);
    t.regex(out.text(), /\/dev\/pts\/\d+/);
    const st = await c.status;
    t.is(exitCodeOf(st), 3);
  });

  test.serial('Exec of a command that does not exist: exit code 127 and the reason', async (t) => {
    const r = await finish(await spdyExec(await execUrl(['no-such-command-x'], { stdout: true, stderr: true }), { stdout: true, stderr: true }));
    t.is(r.code, 127);
    t.regex(r.out + r.err, /no-such-command-x/);
  });

  test.serial('a client that disconnects mid-exec leaves no process behind', async (t) => {
    // A unique sleep time marks both the shell and its child (the whole process group must go).
    const marker = String(900_000 + randomBytes(2).readUInt16BE());
    const url = await execUrl(['sh', '-c', `sleep ${marker}; echo never`], { stdout: true, stderr: true });
    const c = await spdyExec(url, { stdout: true, stderr: true });
    await waitFor('the exec and its child to run', () => pidsWith(marker).length === 2, 10_000);
    c.close();
    await waitFor('the exec to be killed', () => pidsWith(marker).length === 0, 10_000);
    t.deepEqual(pidsWith(marker), []);
  });

  test.serial('stream tokens are single use; reused and unknown ones get 404 (expiry: unit stream-remotecommand)', async (t) => {
    const url = await execUrl(['true'], {});
    await finish(await spdyExec(url, { stdout: true, stderr: true }));
    const reused = await t.throwsAsync(spdyExec(url, { stdout: true, stderr: true }));
    t.true(reused instanceof HttpError && reused.status === 404, String(reused));
    t.regex((reused as HttpError).body, /unknown, expired or already used/);
    const unknown = await t.throwsAsync(spdyExec(url.replace(/[^/]+$/, 'nosuchtoken'), { stdout: true }));
    t.is((unknown as HttpError).status, 404);
  });

  test.serial('Exec, Attach and PortForward refuse bad requests with the field named', async (t) => {
    const rejects = async (rpc: string, req: object, code: status, re: RegExp) => {
      const e = (await t.throwsAsync(d.client.call(rpc, req))) as unknown as { code: number; details: string };
      t.is(e.code, code, `${rpc}: ${e.details}`);
      t.regex(e.details, re);
    };
    await rejects('Exec', { container_id: ticker, cmd: [], stdout: true }, status.INVALID_ARGUMENT, /cmd/);
    await rejects('Exec', { container_id: ticker, cmd: ['true'] }, status.INVALID_ARGUMENT, /stdin, stdout and stderr/);
    await rejects('Exec', { container_id: ticker, cmd: ['true'], stdout: true, stderr: true, tty: true }, status.INVALID_ARGUMENT, /tty and stderr/);
    await rejects('Exec', { container_id: 'nosuch', cmd: ['true'], stdout: true }, status.NOT_FOUND, /container_id/);
    await rejects('Attach', { container_id: '', stdout: true }, status.INVALID_ARGUMENT, /container_id/);
    await rejects('PortForward', { pod_sandbox_id: 'nosuch', port: [80] }, status.NOT_FOUND, /pod_sandbox_id/);
    await rejects('PortForward', { pod_sandbox_id: pod, port: [70000] }, status.INVALID_ARGUMENT, /port/);
  });

  test.serial('Attach to a non-tty container: two attaches at once both see stdout and stderr', async (t) => {
    const url = async () => (await d.client.call('Attach', { container_id: ticker, stdout: true, stderr: true })).url as string;
    const [a, b] = [await spdyExec(await url(), { stdout: true, stderr: true }), await wsExec(await url(), { stdout: true, stderr: true })];
    const [ao, ae, bo, be] = [watch(a.stdout), watch(a.stderr), watch(b.stdout), watch(b.stderr)];
    await Promise.all([ao.until(/tick \d+/), ae.until(/tock \d+/), bo.until(/tick \d+/), be.until(/tock \d+/)]);
    a.close();
    b.close();
    // Detaching leaves the container running.
    await sleep(300);
    t.is((await d.client.call('ContainerStatus', { container_id: ticker })).status.state, 'CONTAINER_RUNNING');
  });

  test.serial('Attach to a tty container with stdin: typed input runs, resize applies; the CRI log keeps the output', async (t) => {
    const { id } = await d.runContainer(pod, sandbox, 'tty', ['sh'], { tty: true, stdin: true });
    const url = (await d.client.call('Attach', { container_id: id, stdin: true, stdout: true, tty: true })).url as string;
    const c = await spdyExec(url, { stdin: true, stdout: true, tty: true });
    const out = watch(c.stdout);
    c.resize(77, 22);
    await sleep(200);
    c.stdin!.write('echo attached-$((6*7)); stty size\n');
    await out.until(/attached-42/);
    await out.until(/22 77/);
    c.close();
    const st = (await d.client.call('ContainerStatus', { container_id: id })).status;
    await waitFor('the log to carry the output', () => readFileSync(st.log_path, 'utf8').includes('attached-42'), 10_000);
    t.regex(readFileSync(st.log_path, 'utf8'), / stdout [FP] .*attached-42/);
  });

  test.serial('Attach with stdin_once: stdin closes when the first attach detaches, and the command ends', async (t) => {
    const { id } = await d.runContainer(pod, sandbox, 'once', ['sh', '-c', 'cat; echo stdin-closed; exit 4'], { stdin: true, stdin_once: true });
    const url = (await d.client.call('Attach', { container_id: id, stdin: true, stdout: true, stderr: true })).url as string;
    const c = await spdyExec(url, { stdin: true, stdout: true, stderr: true });
    const out = watch(c.stdout);
    c.stdin!.write('first-line\n');
    await out.until(/first-line/);
    c.close();
    await waitFor('the container to exit', async () => (await d.client.call('ContainerStatus', { container_id: id })).status.state === 'CONTAINER_EXITED', 15_000);
    const st = (await d.client.call('ContainerStatus', { container_id: id })).status;
    t.is(st.exit_code, 4);
    t.regex(readFileSync(st.log_path, 'utf8'), /stdin-closed/);
  });

  test.serial('PortForward: a 16 MB round trip intact, 20 connections at once, and a closed port reported', async (t) => {
    await d.runContainer(pod, sandbox, 'echo-server', ['sh', '-c', 'while true; do nc -l -p 7000 -e cat; done']);
    await d.runContainer(pod, sandbox, 'web', ['httpd', '-f', '-p', '8080', '-h', '/etc']);
    const url = async () => (await d.client.call('PortForward', { pod_sandbox_id: pod, port: [] })).url as string;
    const pf = await spdyPortForward(await url());
    t.teardown(() => pf.close());
    // The echo server (busybox nc) serves one connection at a time: wait for it to listen.
    const big = randomBytes(16 * 1024 * 1024);
    let conn;
    for (let i = 0; ; i++) {
      conn = await pf.open(7000);
      const probe = await Promise.race([conn.error.then((e) => e), sleep(500).then(() => '')]);
      if (!probe) break;
      if (i > 20) throw new Error(`echo server never listened: ${probe}`);
      await sleep(200);
    }
    const back = collect(conn.data);
    conn.data.end(big);
    t.is(createHash('sha256').update(await back).digest('hex'), createHash('sha256').update(big).digest('hex'));

    const many = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const c = await pf.open(8080);
        const body = collect(c.data);
        c.data.end('GET /hostname HTTP/1.0\r\n\r\n');
        return (await body).toString();
      }),
    );
    t.is(many.filter((r) => /^HTTP\/1\.[01] 200/.test(r) && r.includes('streaming')).length, 20);

    const dead = await pf.open(1);
    dead.data.resume();
    t.regex(await dead.error, /port 1.*(refused|ECONNREFUSED)/i);

    // crictl >= 1.30's WebSocket transport: SPDY inside WebSocket.
    const tunnel = await tunnelPortForward(await url());
    t.teardown(() => tunnel.close());
    const tc = await tunnel.open(8080);
    const tb = collect(tc.data);
    tc.data.end('GET /hostname HTTP/1.0\r\n\r\n');
    t.regex((await tb).toString(), /^HTTP\/1\.[01] 200[\s\S]*streaming/);
  });
}

// The stream server's exec/attach side over real loopback TCP, with the test
// client and an in-test Runtime: protocol negotiation for SPDY (v4, v3, v2,
// channel.k8s.io) and WebSocket (v4, v4.base64, v5 with its CLOSE signal), the
// exit status encodings, resize events, and the single-use tokens.
import test from 'ava';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { StreamServer, StreamRequestError, type ExitStatus, type Runtime, type StreamIO, type TerminalSize } from '../../src/stream/server.js';
import { collect, exitCodeOf, HttpError, spdyConnect, spdyExec, wsConnect, wsExec } from '../helpers/stream-client.js';

const sizes: TerminalSize[][] = [];

/** cmd[0] picks the behaviour: echo stdin to stdout (+ "E" on stderr) and exit
 *  with cmd[1]; collect resize events; or fail inside the runtime. */
const runtime: Runtime = {
  async exec(req, io: StreamIO): Promise<ExitStatus> {
    const [what, arg] = req.cmd;
    if (what === 'fail') throw new Error('no such process');
    if (what === 'resize') {
      const seen: TerminalSize[] = [];
      sizes.push(seen);
      for await (const s of io.resize!) {
        seen.push(s);
        io.stdout!.write(`${s.width}x${s.height}\n`);
        if (seen.length === Number(arg)) break;
      }
      return { exitCode: 0 };
    }
    io.stderr?.write('E');
    if (io.stdin && io.stdout) {
      io.stdin.pipe(io.stdout, { end: false });
      await once(io.stdin, 'end');
    }
    return { exitCode: Number(arg ?? 0) };
  },
  async attach(_req, io) {
    io.stdout!.write('attached');
  },
  portForward(): Promise<Duplex> {
    throw new Error('not in this test');
  },
};

let server: StreamServer;
test.before(async () => {
  server = new StreamServer(runtime);
  await server.start();
});
test.after.always(() => server?.stop());

const exec = (cmd: string[], o: { stdin?: boolean; stdout?: boolean; stderr?: boolean; tty?: boolean } = {}) =>
  server.getExecUrl({
    container_id: 'c1',
    cmd,
    stdin: o.stdin ?? true,
    stdout: o.stdout ?? true,
    stderr: o.stderr ?? !o.tty,
    tty: o.tty ?? false,
  });

test('the listener is on 127.0.0.1 only, on a random port, and URLs carry a URL-safe token', (t) => {
  const a = server.listenAddress();
  t.is(a.address, '127.0.0.1');
  t.true(a.port > 0);
  const url = exec(['echo']);
  t.regex(url, new RegExp(`^http://127\\.0\\.0\\.1:${a.port}/exec/[A-Za-z0-9_-]{22}$`));
});

test('SPDY v4: stdin echoes to stdout, stderr arrives, exit code 7 is a NonZeroExitCode status', async (t) => {
  const c = await spdyExec(exec(['echo', '7']), { stdin: true, stdout: true, stderr: true });
  t.is(c.protocol, 'v4.channel.k8s.io');
  const out = collect(c.stdout!);
  const err = collect(c.stderr!);
  c.stdin!.end('hello over spdy');
  t.is((await out).toString(), 'hello over spdy');
  t.is((await err).toString(), 'E');
  const status = await c.status;
  t.deepEqual(JSON.parse(status), {
    metadata: {},
    status: 'Failure',
    message: 'command terminated with non-zero exit code: exit code 7',
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: '7' }] },
  });
  t.is(exitCodeOf(status), 7);
});

test('SPDY v4: exit code 0 is {"metadata":{},"status":"Success"}', async (t) => {
  const c = await spdyExec(exec(['echo', '0']), { stdin: true, stdout: true, stderr: true });
  c.stdin!.end('x');
  t.is((await collect(c.stdout!)).toString(), 'x');
  t.is(await c.status, '{"metadata":{},"status":"Success"}');
});

for (const protocol of ['v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io']) {
  test(`SPDY ${protocol}: negotiated when offered alone; failure is plain text, success says nothing`, async (t) => {
    const bad = await spdyExec(exec(['echo', '7']), { stdin: true, stdout: true, stderr: true }, [protocol]);
    t.is(bad.protocol, protocol);
    bad.stdin!.end('abc');
    t.is((await collect(bad.stdout!)).toString(), 'abc');
    t.is(await bad.status, 'command terminated with non-zero exit code: exit code 7');
    const good = await spdyExec(exec(['echo', '0']), { stdin: true, stdout: true, stderr: true }, [protocol]);
    good.stdin!.end();
    t.is(await good.status, '');
  });
}

test('SPDY: the client order decides among supported protocols', async (t) => {
  const c = await spdyExec(exec(['echo'], { stderr: false }), { stdin: true, stdout: true }, ['v9.channel.k8s.io', 'v2.channel.k8s.io', 'v4.channel.k8s.io']);
  t.is(c.protocol, 'v2.channel.k8s.io');
  c.stdin!.end();
  await c.status;
});

test('SPDY: no common protocol is 403 with X-Accepted-Stream-Protocol-Versions; none offered is 400', async (t) => {
  const e = await t.throwsAsync(spdyConnect(exec(['echo']), ['v9.channel.k8s.io']), { instanceOf: HttpError });
  t.is(e?.status, 403);
  t.is(e?.headers['x-accepted-stream-protocol-versions'], 'v4.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io');
  t.regex(e?.body ?? '', /unable to negotiate protocol/);
  const e2 = await t.throwsAsync(spdyConnect(exec(['echo']), []), { instanceOf: HttpError });
  t.is(e2?.status, 400);
});

test('SPDY v4 with a tty: resize events reach the runtime in order', async (t) => {
  const c = await spdyExec(exec(['resize', '3'], { tty: true }), { stdin: true, stdout: true, tty: true });
  const out = collect(c.stdout!);
  c.resize(80, 24);
  c.resize(120, 40);
  c.resize(1, 2);
  t.is((await out).toString(), '80x24\n120x40\n1x2\n');
  t.is(exitCodeOf(await c.status), 0);
});

test('SPDY: a runtime error is InternalError with code 500', async (t) => {
  const c = await spdyExec(exec(['fail'], { stdin: false }), { stdout: true, stderr: true });
  const s = JSON.parse(await c.status) as { status: string; reason: string; code: number; message: string };
  t.is(s.status, 'Failure');
  t.is(s.reason, 'InternalError');
  t.is(s.code, 500);
  t.regex(s.message, /error executing command in container: no such process/);
});

test('SPDY: attach reports Success after the runtime returns', async (t) => {
  const url = server.getAttachUrl({ container_id: 'c1', stdin: false, stdout: true, stderr: false, tty: false });
  t.regex(url, /\/attach\//);
  const c = await spdyExec(url, { stdout: true });
  t.is((await collect(c.stdout!)).toString(), 'attached');
  t.is(exitCodeOf(await c.status), 0);
});

for (const protocol of ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io', 'v5.channel.k8s.io']) {
  test(`WebSocket ${protocol}: ready frame, stdin echo, exit code 7 in a JSON status`, async (t) => {
    const c = await wsExec(exec(['echo', '7']), { stdin: true, stdout: true, stderr: true }, protocol);
    t.is(c.protocol, protocol);
    // the empty "ready" message on the lowest writable channel (stdout)
    const first = await c.firstMessage;
    t.deepEqual(first, protocol.includes('base64') ? Buffer.from('1') : Buffer.of(1));
    const out = collect(c.stdout!);
    const err = collect(c.stderr!);
    c.stdin!.write('over ');
    c.stdin!.write('websocket');
    if (protocol.startsWith('v5')) {
      // v5 half-closes stdin with [255, 0]; the connection stays up for the status
      c.stdin!.end();
      t.is((await out).toString(), 'over websocket');
      t.is((await err).toString(), 'E');
      t.is(exitCodeOf(await c.status), 7);
    } else {
      // before v5 stdin can only end with the connection (the status is lost):
      // hang up once the echo is back
      let seen = '';
      await new Promise<void>((resolve) => c.stdout!.on('data', (b: Buffer) => (seen += b) === 'over websocket' && resolve()));
      c.close();
      t.is((await out).toString(), 'over websocket');
    }
  });
}

test('WebSocket v5: exit 0 is Success, and resize events arrive', async (t) => {
  const c = await wsExec(exec(['resize', '2'], { tty: true }), { stdin: true, stdout: true, tty: true });
  const out = collect(c.stdout!);
  c.resize(100, 50);
  c.resize(33, 11);
  t.is((await out).toString(), '100x50\n33x11\n');
  t.is(await c.status, '{"metadata":{},"status":"Success"}');
});

test('WebSocket channel.k8s.io (pre-v4): failure status is plain text', async (t) => {
  const c = await wsExec(exec(['echo', '3'], { stdin: false }), { stdout: true, stderr: true }, 'channel.k8s.io');
  t.is(await c.status, 'command terminated with non-zero exit code: exit code 3');
});

test('WebSocket: an unsupported subprotocol is refused with 400', async (t) => {
  const e = await t.throwsAsync(wsConnect(exec(['echo']), ['v9.channel.k8s.io']), { instanceOf: HttpError });
  t.is(e?.status, 400);
  t.regex(e?.body ?? '', /not supported/);
});

test('tokens are single use: reuse, unknown and expired tokens get 404 with a text body', async (t) => {
  const url = exec(['echo', '0'], { stdin: false });
  const c = await spdyExec(url, { stdout: true, stderr: true });
  await c.status;
  const reused = await t.throwsAsync(spdyConnect(url, ['v4.channel.k8s.io']), { instanceOf: HttpError });
  t.is(reused?.status, 404);
  t.regex(reused?.body ?? '', /stream token not found: unknown, expired or already used/);
  const unknown = await t.throwsAsync(wsConnect(`${server.url()}/exec/AAAAAAAAAAAAAAAAAAAAAA`, ['v5.channel.k8s.io']), { instanceOf: HttpError });
  t.is(unknown?.status, 404);
  // the kind is part of the token's meaning: an exec token is no attach token
  const wrongKind = exec(['echo']).replace('/exec/', '/attach/');
  t.is((await t.throwsAsync(spdyConnect(wrongKind, ['v4.channel.k8s.io']), { instanceOf: HttpError }))?.status, 404);

  const short = new StreamServer(runtime, { requestTtlMs: 50 });
  await short.start();
  try {
    const old = short.getExecUrl({ container_id: 'c', cmd: ['echo'], stdin: false, stdout: true, stderr: false, tty: false });
    await sleep(120);
    const expired = await t.throwsAsync(spdyConnect(old, ['v4.channel.k8s.io']), { instanceOf: HttpError });
    t.is(expired?.status, 404);
  } finally {
    await short.stop();
  }
});

test('a plain GET (no upgrade) is 400 and still uses the token up', async (t) => {
  const url = exec(['echo']);
  const r1 = await fetch(url);
  t.is(r1.status, 400);
  t.regex(await r1.text(), /upgrade/);
  const r2 = await fetch(url, { method: 'POST' });
  t.is(r2.status, 404);
});

test('requests the server cannot serve are refused before a URL is made', (t) => {
  t.throws(() => exec(['echo'], { tty: true, stderr: true }), { instanceOf: StreamRequestError, message: /tty and stderr/ });
  t.throws(() => exec(['echo'], { stdin: false, stdout: false, stderr: false }), { instanceOf: StreamRequestError });
  t.throws(() => server.getPortForwardUrl({ pod_sandbox_id: '', port: [] }), { instanceOf: StreamRequestError });
});

test('with stream_tls_cert/key the streams are served over TLS (https URLs, SPDY inside TLS)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cm-stream-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [cert, key] = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const tls = new StreamServer(runtime, { tlsCertFile: cert, tlsKeyFile: key });
  await tls.start();
  try {
    const url = tls.getExecUrl({ container_id: 'c', cmd: ['echo', '5'], stdin: true, stdout: true, stderr: true, tty: false });
    t.regex(url, /^https:\/\/127\.0\.0\.1:\d+\/exec\//);
    const c = await spdyExec(url, { stdin: true, stdout: true, stderr: true });
    c.stdin!.end('over tls');
    const [out, st] = await Promise.all([collect(c.stdout!), c.status]);
    t.is(out.toString(), 'over tls');
    t.is(exitCodeOf(st), 5);
    // Plain HTTP to the TLS port is not served.
    await t.throwsAsync(spdyExec(url.replace('https:', 'http:'), { stdout: true }));
  } finally {
    await tls.stop();
  }
});

// The k8s remotecommand protocol, server side (exec and attach), over SPDY
// (the streams arrive as SYN_STREAMs tagged with a streamType header) or over
// WebSocket (channels 0-4 inside one connection). Both end up as one StreamIO.
import type { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { WebSocket } from 'ws';
import type { Logger } from '../log.js';
import { ResizeQueue } from './resize.js';
import type { SpdySession } from './spdy/session.js';
import type { SpdyStream } from './spdy/stream.js';
import { encodeStatus } from './status.js';
import type { ExitStatus, RemoteCommandOptions, StreamIO, TerminalSize } from './types.js';
import { channelCodec, channelReader, channelWriter, wsSend } from './wschannel.js';

/** in the order we prefer them; the client's order decides */
export const SPDY_REMOTECOMMAND_PROTOCOLS = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'];
/** v5 is what crictl --transport websocket offers; the stock kubelet handler lacks it */
export const WS_REMOTECOMMAND_PROTOCOLS = [
  'v5.channel.k8s.io',
  'v4.channel.k8s.io',
  'v4.base64.channel.k8s.io',
  'channel.k8s.io',
  'base64.channel.k8s.io',
];

const CH = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4 } as const;

/** k8s drops stderr when a tty is asked for: the terminal carries both. */
export function normalizeOptions(o: RemoteCommandOptions): RemoteCommandOptions {
  return { ...o, stderr: o.stderr && !o.tty };
}

interface Parts {
  tty: boolean;
  stdin: Readable | null;
  stdout: Writable | null;
  stderr: Writable | null;
  resize: AsyncIterable<TerminalSize> | null;
  jsonStatus: boolean;
  /** write the status payload (null: nothing to say) and close the error channel */
  writeStatus(payload: Buffer | null): Promise<void>;
  hangUp(): void;
}

class RemoteCommandIO implements StreamIO {
  readonly tty: boolean;
  readonly stdin: Readable | null;
  readonly stdout: Writable | null;
  readonly stderr: Writable | null;
  readonly resize: AsyncIterable<TerminalSize> | null;
  closed = false;
  private readonly closeCbs: (() => void)[] = [];
  private finishing: Promise<void> | null = null;

  constructor(
    private readonly parts: Parts,
    log?: Logger,
  ) {
    ({ tty: this.tty, stdin: this.stdin, stdout: this.stdout, stderr: this.stderr, resize: this.resize } = parts);
    // A write after the client left must not become an unhandled 'error'.
    for (const s of [this.stdin, this.stdout, this.stderr]) {
      s?.on('error', (err: Error) => log?.debug('stream: client stream error', { err: err.message }));
    }
  }

  done(status: ExitStatus): Promise<void> {
    this.finishing ??= (async () => {
      await Promise.all([endAndWait(this.stdout), endAndWait(this.stderr)]);
      if (!this.closed) await this.parts.writeStatus(encodeStatus(status, this.parts.jsonStatus)).catch(() => undefined);
      this.parts.hangUp();
    })();
    return this.finishing;
  }

  onClose(cb: () => void): void {
    if (this.closed) queueMicrotask(cb);
    else this.closeCbs.push(cb);
  }

  markClosed(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cb of this.closeCbs.splice(0)) cb();
  }
}

async function endAndWait(w: Writable | null): Promise<void> {
  if (!w || w.destroyed) return;
  if (!w.writableEnded) w.end();
  await finished(w, { readable: false }).catch(() => undefined);
}

// ---- SPDY ---------------------------------------------------------------------------

/** Wait for the client's streams (error first, then stdin/stdout/stderr/resize as
 *  requested) and wrap them. Resolves null (and closes the session) when they do
 *  not all arrive within `timeoutMs` or the session ends first. */
export function acceptSpdyRemoteCommand(
  session: SpdySession,
  protocol: string,
  requested: RemoteCommandOptions,
  timeoutMs: number,
  log?: Logger,
): Promise<StreamIO | null> {
  const opts = normalizeOptions(requested);
  const resizable = opts.tty && (protocol === 'v4.channel.k8s.io' || protocol === 'v3.channel.k8s.io');
  const expected = new Set<string>(['error']);
  for (const k of ['stdin', 'stdout', 'stderr'] as const) if (opts[k]) expected.add(k);
  if (resizable) expected.add('resize');

  return new Promise((resolve) => {
    const got = new Map<string, SpdyStream>();
    const onStream = (s: SpdyStream) => {
      const type = s.headers.streamtype ?? '';
      if (!expected.has(type) || got.has(type)) {
        log?.debug('stream: unexpected remotecommand stream', { type });
        return s.refuse();
      }
      s.accept();
      got.set(type, s);
      if (got.size === expected.size) finish(true);
    };
    const onClose = () => finish(false);
    const timer = setTimeout(() => {
      log?.warn('stream: timed out waiting for the client to create streams', { have: [...got.keys()], want: [...expected] });
      finish(false);
    }, timeoutMs);
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      session.off('stream', onStream);
      session.off('close', onClose);
      if (!ok) {
        session.close();
        return resolve(null);
      }
      // Anything opened later is refused rather than left dangling.
      session.on('stream', (s) => s.refuse());
      resolve(spdyIO(session, got, protocol, opts, log));
    };
    session.on('stream', onStream);
    session.on('close', onClose);
  });
}

function spdyIO(
  session: SpdySession,
  s: Map<string, SpdyStream>,
  protocol: string,
  opts: RemoteCommandOptions,
  log?: Logger,
): StreamIO {
  const error = s.get('error')!;
  // the client writes nothing on these; reading keeps their end/close bookkeeping going
  for (const k of ['error', 'stdout', 'stderr']) s.get(k)?.resume();
  let resize: ResizeQueue | null = null;
  const resizeStream = s.get('resize');
  if (resizeStream) {
    resize = new ResizeQueue();
    resize.consume(resizeStream);
  }
  const io = new RemoteCommandIO(
    {
      tty: opts.tty,
      stdin: s.get('stdin') ?? null,
      stdout: s.get('stdout') ?? null,
      stderr: s.get('stderr') ?? null,
      resize,
      jsonStatus: protocol === 'v4.channel.k8s.io',
      writeStatus: async (payload) => {
        error.end(payload ?? undefined);
        await finished(error, { readable: false });
      },
      hangUp: () => session.close(),
    },
    log,
  );
  session.once('close', () => {
    resize?.end();
    io.markClosed();
  });
  if (session.destroyed) io.markClosed();
  return io;
}

// ---- WebSocket ----------------------------------------------------------------------

/** `protocol`: the negotiated subprotocol ('' when the client offered none) */
export function acceptWsRemoteCommand(ws: WebSocket, protocol: string, requested: RemoteCommandOptions, log?: Logger): StreamIO {
  const opts = normalizeOptions(requested);
  const codec = channelCodec(protocol);
  const stdin = opts.stdin ? channelReader(ws) : null;
  const stdout = opts.stdout ? channelWriter(ws, codec, CH.stdout) : null;
  const stderr = opts.stderr ? channelWriter(ws, codec, CH.stderr) : null;
  const resize = opts.tty ? new ResizeQueue() : null;

  ws.on('message', (raw: Buffer) => {
    const m = codec.decode(raw);
    if (!m) return;
    if ('close' in m) {
      if (m.close === CH.stdin) stdin?.finish();
      if (m.close === CH.resize) resize?.end();
      return;
    }
    if (m.channel === CH.stdin) stdin?.feed(m.data);
    else if (m.channel === CH.resize) resize?.feed(m.data);
  });

  // Tell the client we are ready: an empty message on the lowest writable channel.
  const first = opts.stdout ? CH.stdout : opts.stderr ? CH.stderr : CH.error;
  wsSend(ws, codec.encode(first, Buffer.alloc(0))).catch(() => undefined);

  const io = new RemoteCommandIO(
    {
      tty: opts.tty,
      stdin,
      stdout,
      stderr,
      resize,
      jsonStatus: protocol.startsWith('v4.') || protocol.startsWith('v5.'),
      writeStatus: async (payload) => {
        if (payload) await wsSend(ws, codec.encode(CH.error, payload));
      },
      hangUp: () => {
        if (ws.readyState === ws.OPEN) ws.close(1000);
      },
    },
    log,
  );
  ws.once('close', () => {
    // Without v5's close signal, stdin ends when the connection does.
    stdin?.finish();
    resize?.end();
    io.markClosed();
  });
  return io;
}

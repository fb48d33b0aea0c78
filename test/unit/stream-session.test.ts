// SpdySession backpressure over real loopback TCP: 16 MB each way through one
// stream with a deliberately slow reader on both ends. Nothing may be lost or
// reordered (sha256), and the slow side must push back (pause the socket)
// instead of buffering the whole transfer.
import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpdySession } from '../../src/stream/spdy/session.js';
import type { SpdyStream } from '../../src/stream/spdy/stream.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Reads `r` in 64 KiB bites with a pause after each; records the most it ever had buffered. */
async function slowRead(r: SpdyStream, stats: { maxBuffered: number }): Promise<Buffer> {
  const hash = createHash('sha256');
  for await (const chunk of r as AsyncIterable<Buffer>) {
    stats.maxBuffered = Math.max(stats.maxBuffered, r.readableLength + chunk.length);
    hash.update(chunk);
    await sleep(1);
  }
  return Buffer.from(hash.digest('hex'));
}

test('16 MB both ways through one stream with slow readers: intact, and buffering stays bounded', async (t) => {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const sock = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [serverSock] = (await accepted) as [net.Socket];
  const serverSession = new SpdySession(serverSock, { role: 'server' });
  const clientSession = new SpdySession(sock, { role: 'client' });

  const up = randomBytes(16 << 20);
  const down = randomBytes(16 << 20);
  const serverStats = { maxBuffered: 0 };
  const clientStats = { maxBuffered: 0 };

  const serverDone = new Promise<string>((resolve) => {
    serverSession.on('stream', (s) => {
      s.accept();
      Readable.from(chunks(down)).pipe(s);
      slowRead(s, serverStats).then((h) => resolve(h.toString()));
    });
  });
  const start = Date.now();
  const s = await clientSession.openStream({ streamtype: 'data' });
  Readable.from(chunks(up)).pipe(s);
  const clientGot = (await slowRead(s, clientStats)).toString();
  const serverGot = await serverDone;
  t.log(`32 MiB moved in ${Date.now() - start} ms; most buffered in a stream: server ${serverStats.maxBuffered}, client ${clientStats.maxBuffered}`);
  t.is(serverGot, sha(up));
  t.is(clientGot, sha(down));
  // a stream's readable buffer is 16 KiB by default; one frame (64 KiB) may land on top
  t.true(serverStats.maxBuffered < 1 << 20, `server buffered ${serverStats.maxBuffered}`);
  t.true(clientStats.maxBuffered < 1 << 20, `client buffered ${clientStats.maxBuffered}`);
  clientSession.close();
  await once(serverSession, 'close');
  server.close();
});

function* chunks(b: Buffer, size = 100_000): Generator<Buffer> {
  for (let off = 0; off < b.length; off += size) yield b.subarray(off, off + size);
}

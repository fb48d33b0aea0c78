// The Docker containerizer's pure parts: references, the resource mapping, the Engine's stream
// framing and times, the executor's CRI log writer.
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineAuth, engineInsecure, resourceFields, splitRef } from '../../src/containerizer/docker/containerizer.js';
import { CriLog, MAX_LOG_LINE } from '../../src/containerizer/docker/executor.js';
import { Demux, rfc3339Nanos, socketPath } from '../../src/docker/engine.js';
import { executorImageFiles } from '../../hack/build-executor-image.js';
import { BUNDLE_FILE, projectRoot } from '../../src/util/paths.js';

test('references: the registry host (docker.io by default), the repository, the tag or digest', (t) => {
  t.deepEqual(splitRef('busybox'), { host: 'docker.io', repo: 'busybox', tag: 'latest' });
  t.deepEqual(splitRef('library/busybox:1.36'), { host: 'docker.io', repo: 'library/busybox', tag: '1.36' });
  t.deepEqual(splitRef('127.0.0.1:5000/a/b:v1'), { host: '127.0.0.1:5000', repo: '127.0.0.1:5000/a/b', tag: 'v1' });
  t.deepEqual(splitRef('localhost/x'), { host: 'localhost', repo: 'localhost/x', tag: 'latest' });
  t.deepEqual(splitRef('cri-mesos.test/busybox@sha256:ab'), { host: 'cri-mesos.test', repo: 'cri-mesos.test/busybox', tag: 'sha256:ab' });
});

test('resources map to the Engine\'s HostConfig fields (Mesos minimums: 2 shares, 1 ms quota)', (t) => {
  t.deepEqual(resourceFields({ cpuShares: 1, cpuQuota: 10, cpuPeriod: 100_000, memoryLimitBytes: 1 << 26, pidsLimit: 9, cpusetCpus: '0', cpusetMems: '0', memorySwapLimitBytes: 1 << 27 }), {
    CpuShares: 2,
    CpuQuota: 1000,
    CpuPeriod: 100_000,
    Memory: 1 << 26,
    MemorySwap: 1 << 27,
    PidsLimit: 9,
    CpusetCpus: '0',
    CpusetMems: '0',
  });
  t.deepEqual(resourceFields({ cpuQuota: -1 }), {});
});

test('the Engine\'s multiplexed stream is split into stdout and stderr frames, across chunk borders', (t) => {
  const got: [number, string][] = [];
  const demux = new Demux((s, d) => got.push([s, d.toString()]));
  const frame = (s: number, text: string) => {
    const head = Buffer.from([s, 0, 0, 0, 0, 0, 0, 0]);
    head.writeUInt32BE(Buffer.byteLength(text), 4);
    return Buffer.concat([head, Buffer.from(text)]);
  };
  const all = Buffer.concat([frame(1, 'hello'), frame(2, 'err!')]);
  demux.push(all.subarray(0, 3));
  demux.push(all.subarray(3, 12));
  demux.push(all.subarray(12));
  t.deepEqual(got, [
    [1, 'hello'],
    [2, 'err!'],
  ]);
});

test('RFC 3339 times with nanoseconds become ns since the epoch; Docker\'s zero time is 0', (t) => {
  t.is(rfc3339Nanos('1970-01-01T00:00:01.000000002Z'), '1000000002');
  t.is(rfc3339Nanos('2024-01-01T00:00:00Z'), String(BigInt(Date.parse('2024-01-01T00:00:00Z')) * 1_000_000n));
  t.is(rfc3339Nanos('0001-01-01T00:00:00Z'), '0');
  t.is(socketPath('unix:///run/docker.sock'), '/run/docker.sock');
  t.throws(() => socketPath('tcp://1.2.3.4:2375'));
});

test('the executor\'s CRI log: F lines, 16 KiB P chunks, CR stripped, the rest flushed as P, reopen', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cm-crilog-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'c', '0.log');
  const log = new CriLog(path, (m) => t.fail(m));
  log.write('stdout', Buffer.from('one\r\ntw'));
  log.write('stdout', Buffer.from('o\n' + 'x'.repeat(MAX_LOG_LINE + 5) + '\n'));
  log.write('stderr', Buffer.from('no newline'));
  log.flush();
  const lines = readFileSync(path, 'utf8').trim().split('\n').map((l) => /^\S+Z (\S+) ([PF]) (.*)$/.exec(l)!.slice(1));
  t.deepEqual(
    lines.map(([s, tag, text]) => [s, tag, text!.length > 20 ? text!.length : text]),
    [
      ['stdout', 'F', 'one'],
      ['stdout', 'F', 'two'],
      ['stdout', 'P', MAX_LOG_LINE],
      ['stdout', 'F', 'xxxxx'],
      ['stderr', 'P', 'no newline'],
    ],
  );
  renameSync(path, `${path}.1`);
  log.reopen();
  log.write('stdout', Buffer.from('after\n'));
  log.close();
  t.regex(readFileSync(path, 'utf8'), / stdout F after\n$/);
});

// Mode A's test image: everything the executor entry needs, at the host's paths.
(existsSync(join(projectRoot(), BUNDLE_FILE)) ? test : test.skip)('the mode-A image holds node, its ldd libraries with the ELF loader, and the bundle', (t) => {
  const files = executorImageFiles();
  t.true(files.includes(process.execPath));
  t.true(files.includes(join(projectRoot(), BUNDLE_FILE)));
  t.true(files.includes(join(projectRoot(), 'package.json')));
  t.true(files.some((f) => /\/libc\.so\.6$/.test(f)), files.join(' '));
  t.true(files.some((f) => /\/ld-linux[^/]*\.so\.\d$/.test(f)), files.join(' '));
  t.true(files.every((f) => f.startsWith('/') && existsSync(f)));
});

test('Engine pulls: the AuthConfig from CRI credentials, and which hosts the Engine reaches over plain HTTP', (t) => {
  t.deepEqual(engineAuth({ username: 'u', password: 'p' }, 'reg:5000'), { username: 'u', password: 'p', serveraddress: 'reg:5000' });
  t.deepEqual(engineAuth({ auth: Buffer.from('u:p:q').toString('base64') }, 'reg'), { username: 'u', password: 'p:q', serveraddress: 'reg' }, '"auth" is split for the Engine');
  t.deepEqual(engineAuth({ identityToken: 'tok', serverAddress: 'quay.io' }, 'mirror'), { serveraddress: 'quay.io', identitytoken: 'tok' });
  // What dockerd 20.10's /info says by default, plus one --insecure-registry name.
  const rc = { InsecureRegistryCIDRs: ['127.0.0.0/8', '10.1.0.0/16'], IndexConfigs: { 'docker.io': { Secure: true }, 'myreg:5000': { Secure: false } } };
  t.true(engineInsecure('127.0.0.1:5000', rc));
  t.true(engineInsecure('localhost:5000', rc));
  t.true(engineInsecure('10.1.200.3', rc));
  t.false(engineInsecure('10.2.0.1:5000', rc));
  t.true(engineInsecure('myreg:5000', rc));
  t.false(engineInsecure('docker.io', rc));
  t.false(engineInsecure('other.example:5000', rc), 'a name is not resolved');
  t.false(engineInsecure('127.0.0.1:5000', {}), 'an Engine that told nothing');
});

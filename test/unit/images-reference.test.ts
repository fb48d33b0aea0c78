import test from 'ava';
import { normalizeReference, normalizeTag, parseReference } from '../../src/images/reference.js';

const D = 'sha256:' + 'a'.repeat(64);

test('short names get docker.io/library and :latest', (t) => {
  t.is(normalizeTag('busybox'), 'docker.io/library/busybox:latest');
  t.is(normalizeTag('busybox:1.36'), 'docker.io/library/busybox:1.36');
  t.is(normalizeTag('docker.io/busybox'), 'docker.io/library/busybox:latest');
  t.is(normalizeTag('index.docker.io/library/busybox:x'), 'docker.io/library/busybox:x');
});

test('user repositories get docker.io only', (t) => {
  t.is(normalizeTag('foo/bar:1'), 'docker.io/foo/bar:1');
  t.is(normalizeTag('foo/bar/baz'), 'docker.io/foo/bar/baz:latest');
});

test('registry hosts are kept (dot, port, localhost)', (t) => {
  t.is(normalizeTag('127.0.0.1:5000/x:y'), '127.0.0.1:5000/x:y');
  t.is(normalizeTag('127.0.0.1:5000/x'), '127.0.0.1:5000/x:latest');
  t.is(normalizeTag('localhost/x'), 'localhost/x:latest');
  t.is(normalizeTag('cri-mesos.test/busybox'), 'cri-mesos.test/busybox:latest');
  t.is(normalizeTag('registry.k8s.io/pause:3.10'), 'registry.k8s.io/pause:3.10');
});

test('digest references', (t) => {
  const p = parseReference(`busybox@${D}`);
  t.is(p.name, 'docker.io/library/busybox');
  t.is(p.digest, D);
  t.is(p.tag, undefined);
  t.is(normalizeReference(`busybox@${D}`), `docker.io/library/busybox@${D}`);
  t.is(normalizeReference(`busybox:1@${D}`), `docker.io/library/busybox@${D}`);
  t.throws(() => normalizeTag(`busybox@${D}`));
});

test('malformed references are refused', (t) => {
  for (const bad of ['', 'Busybox', 'foo//bar', 'foo/bar:', 'foo@sha256:abc', ':tag', 'a/b:t@sha512:' + 'a'.repeat(128), 'foo bar']) {
    t.throws(() => parseReference(bad), undefined, bad);
  }
});

// Registry client pieces that need no registry: challenges, endpoints,
// credentials, the [registry] config table, the watchdog, error mapping.
import test from 'ava';
import { status } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultRegistriesConfig, parseConfigToml } from '../../src/config.js';
import { CredentialCache } from '../../src/images/credential-cache.js';
import { configCredentials } from '../../src/images/pull.js';
import {
  basicCredentials,
  credentialsKey,
  endpointsFor,
  isLoopbackHost,
  parseChallenge,
  RegistryError,
  Watchdog,
} from '../../src/images/registry.js';
import { credentials, pullError } from '../../src/cri/image/pull-image.js';
import { DigestMismatchError } from '../../src/images/store.js';
import { UnsafeLayerError } from '../../src/images/unpack.js';

test('parseChallenge reads bearer and basic challenges', (t) => {
  t.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' },
  });
  t.deepEqual(parseChallenge('Basic realm="test registry"'), { scheme: 'basic', params: { realm: 'test registry' } });
  t.deepEqual(parseChallenge('bearer realm=http://x/token, service=svc'), { scheme: 'bearer', params: { realm: 'http://x/token', service: 'svc' } });
  t.is(parseChallenge('Bearer realm="a\\"b"')!.params.realm, 'a"b');
  t.is(parseChallenge(undefined), undefined);
  // A second challenge does not overwrite the first one's parameters.
  t.is(parseChallenge('Bearer realm="r1",service="s", Basic realm="r2"')!.params.realm, 'r1');
});

test('loopback hosts are recognised', (t) => {
  for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.1.2.3:80', '[::1]:5000', 'foo.localhost']) t.true(isLoopbackHost(h), h);
  for (const h of ['example.com', '10.0.0.1:5000', '128.0.0.1', 'localhost.example.com', '[::2]:1']) t.false(isLoopbackHost(h), h);
});

test('endpoints: mirrors in order, then the registry; docker.io is registry-1.docker.io; http only when insecure', (t) => {
  const cfg = { ...defaultRegistriesConfig(), mirrors: { 'docker.io': ['http://127.0.0.1:5000', 'https://mirror.example/prefix/'] }, insecure: ['myreg:5000', 'other'] };
  const eps = endpointsFor('docker.io', cfg);
  t.deepEqual(
    eps.map((e) => [e.host, e.prefix, e.schemes, e.mirror]),
    [
      ['127.0.0.1:5000', '', ['http'], true],
      ['mirror.example', '/prefix', ['https'], true],
      ['registry-1.docker.io', '', ['https'], false],
    ],
  );
  t.deepEqual(
    endpointsFor('docker.io', { ...cfg, fallbackToUpstream: false }).map((e) => e.host),
    ['127.0.0.1:5000', 'mirror.example'],
    'fallback_to_upstream = false keeps a mirrored host on its mirrors',
  );
  t.deepEqual(endpointsFor('myreg:5000', { ...cfg, fallbackToUpstream: false })[0]!.host, 'myreg:5000', 'a host without mirrors still goes to itself');
  t.deepEqual(endpointsFor('myreg:5000', cfg)[0]!.schemes, ['https', 'http']);
  t.true(endpointsFor('myreg:5000', cfg)[0]!.insecureTls);
  t.deepEqual(endpointsFor('other:443', cfg)[0]!.schemes, ['https', 'http']);
  t.deepEqual(endpointsFor('127.0.0.1:5000', cfg)[0]!.schemes, ['https', 'http']);
  t.deepEqual(endpointsFor('quay.io', cfg)[0]!.schemes, ['https']);
  t.false(endpointsFor('quay.io', cfg)[0]!.insecureTls);
});

test('credentials: username/password, base64 auth, tokens; AuthConfig mapping', (t) => {
  t.deepEqual(basicCredentials({ username: 'u', password: 'p' }), { username: 'u', password: 'p' });
  t.deepEqual(basicCredentials({ auth: Buffer.from('al:ice:pw').toString('base64') }), { username: 'al', password: 'ice:pw' });
  t.throws(() => basicCredentials({ auth: Buffer.from('nocolon').toString('base64') }), { message: /user:password/ });
  t.is(basicCredentials({ registryToken: 'x' }), undefined);
  t.is(credentials(null), undefined);
  const empty = { username: '', password: '', auth: '', server_address: '', identity_token: '', registry_token: '' };
  t.is(credentials(empty), undefined);
  t.deepEqual(credentials({ ...empty, username: 'u', password: 'p', server_address: 'r:5000' }), {
    username: 'u',
    password: 'p',
    auth: undefined,
    serverAddress: 'r:5000',
    identityToken: undefined,
    registryToken: undefined,
  });
  t.not(credentialsKey({ username: 'u', password: 'a' }), credentialsKey({ username: 'u', password: 'b' }));
  t.is(credentialsKey(undefined), '');
});

test('config: the [registry] table', (t) => {
  const c = parseConfigToml(
    '[registry]\nmirrors = { "docker.io" = ["http://127.0.0.1:5000"] }\ninsecure = ["myreg:5000"]\npull_progress_timeout_seconds = 5\nmax_concurrent_downloads = 4\n',
  );
  t.deepEqual(c.registries, { mirrors: { 'docker.io': ['http://127.0.0.1:5000'] }, insecure: ['myreg:5000'], pullProgressTimeoutSeconds: 5, maxConcurrentDownloads: 4, fallbackToUpstream: true, auths: {} });
  t.deepEqual(parseConfigToml('').registries, defaultRegistriesConfig());
  const sub = parseConfigToml('[registry.mirrors]\n"quay.io" = ["https://m.example"]\n');
  t.deepEqual(sub.registries.mirrors, { 'quay.io': ['https://m.example'] });
  t.throws(() => parseConfigToml('[registry]\nnope = 1\n'), { message: /unknown key "registry.nope"/ });
  t.throws(() => parseConfigToml('[registry]\nmirrors = { "docker.io" = ["ftp://x"] }\n'), { message: /http:\/\/ or https:\/\// });
  t.throws(() => parseConfigToml('[registry]\nmirrors = { "docker.io" = "http://x" }\n'), { message: /list of strings/ });
  t.throws(() => parseConfigToml('[registry]\ninsecure = ["bad host/x"]\n'), { message: /not a host/ });
  t.throws(() => parseConfigToml('[registry]\npull_progress_timeout_seconds = 0\n'), { message: /greater than 0/ });
  t.throws(() => parseConfigToml('[registry]\nmax_concurrent_downloads = 0\n'), { message: /1 to 32/ });
  t.throws(() => parseConfigToml('registry = 3\n'), { message: /expected a table/ });
});

test('config: [registry.auths."host"] credentials, used when PullImage carries none', (t) => {
  const c = parseConfigToml(
    '[registry.auths."127.0.0.1:5000"]\nusername = "u"\npassword = "p"\n[registry.auths."quay.io"]\nauth = "' + Buffer.from('a:b').toString('base64') + '"\n',
  );
  t.deepEqual(c.registries.auths, { '127.0.0.1:5000': { username: 'u', password: 'p' }, 'quay.io': { auth: Buffer.from('a:b').toString('base64') } });
  t.deepEqual(configCredentials(c.registries, '127.0.0.1:5000'), { username: 'u', password: 'p', serverAddress: '127.0.0.1:5000' });
  t.is(configCredentials(c.registries, 'docker.io'), undefined);
  t.throws(() => parseConfigToml('[registry.auths."h"]\nuser = "u"\n'), { message: /unknown key "registry\.auths\."h"\.user"/ });
  t.throws(() => parseConfigToml('[registry.auths."h"]\nusername = "u"\n'), { message: /registry\.auths\."h": needs username and password/ });
  t.throws(() => parseConfigToml('[registry.auths."h"]\nauth = "bm9jb2xvbg"\n'), { message: /auth: must be base64 of user:password/ });
  t.throws(() => parseConfigToml('[registry.auths."bad host"]\nidentitytoken = "t"\n'), { message: /not a registry host/ });
});

test('credential cache: per repository, the latest pull wins, an anonymous pull forgets, entries expire', (t) => {
  const cache = new CredentialCache(2, 1000);
  const alice = { username: 'alice', password: 'x' };
  cache.remember('127.0.0.1:5000/team/app:1', alice, 0);
  t.deepEqual(cache.lookup('127.0.0.1:5000/team/app:2', 10), alice, 'another tag of the same repository');
  t.is(cache.lookup('127.0.0.1:5000/team/other:1', 10), undefined);
  t.is(cache.lookup('127.0.0.1:5000/team/app:1', 2000), undefined, 'expired');
  cache.remember('busybox', alice, 0);
  t.deepEqual(cache.lookup('docker.io/library/busybox:latest', 1), alice, 'short names are docker.io\'s');
  cache.remember('busybox', undefined, 2);
  t.is(cache.lookup('busybox', 3), undefined);
  cache.remember('a/b', alice, 0);
  cache.remember('a/c', alice, 0);
  cache.remember('a/d', alice, 0);
  t.is(cache.lookup('a/b', 1), undefined, 'the oldest goes first past the bound');
  t.deepEqual(cache.lookup('a/d', 1), alice);
});

test('watchdog: fires after the quiet period, each kick restarts it', async (t) => {
  let fired = 0;
  const w = new Watchdog(150, () => new Error('stalled'), () => fired++);
  for (let i = 0; i < 6; i++) {
    await sleep(50);
    w.kick();
  }
  t.is(fired, 0);
  await sleep(250);
  t.is(fired, 1);
  t.is(w.error?.message, 'stalled');
  const w2 = new Watchdog(50, () => new Error('x'), () => fired++);
  w2.stop();
  await sleep(100);
  t.is(fired, 1);
});

test('pull errors map to gRPC codes', (t) => {
  const code = (e: unknown) => pullError('r', e).status;
  t.is(code(new RegistryError('unauthenticated', 'x')), status.UNAUTHENTICATED);
  t.is(code(new RegistryError('not-found', 'x')), status.NOT_FOUND);
  t.is(code(new RegistryError('stalled', 'x')), status.DEADLINE_EXCEEDED);
  t.is(code(new RegistryError('unavailable', 'x')), status.UNAVAILABLE);
  t.is(code(new RegistryError('unsupported', 'x')), status.UNIMPLEMENTED);
  t.is(code(new DigestMismatchError('b', 'sha256:a', 'sha256:b')), status.DATA_LOSS);
  t.is(code(new UnsafeLayerError('escape')), status.FAILED_PRECONDITION);
  // The code comes from the error's type, never from its words.
  t.is(code(new Error('x: index sha256:1 has no image for linux/amd64 (it has: linux/arm64)')), status.UNKNOWN);
  t.is(code(Object.assign(new Error('open'), { code: 'EMFILE' })), status.RESOURCE_EXHAUSTED);
  t.regex(pullError('reg/x:1', new RegistryError('not-found', 'gone')).message, /^pulling reg\/x:1: gone$/);
});

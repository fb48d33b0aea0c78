// hack/critest-images.ts: the stand-ins cover every image critest 1.29 pulls,
// the printed config maps the upstream names onto the loopback registry, and
// the nonewprivs helper really prints its effective uid.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { arch, tmpdir } from 'node:os';
import { join } from 'node:path';
import { IMAGES, nnpElf, registryConfigToml } from '../../hack/critest-images.js';
import { parseConfigToml } from '../../src/config.js';
import { endpointsFor } from '../../src/images/registry.js';

// Every reference in cri-tools v1.29.0 pkg/validate and pkg/framework (Linux),
// with the :latest that critest adds to untagged names. The digest reference
// cannot be matched; its repository is there by tag.
const CRITEST_IMAGES = [
  'registry.k8s.io/e2e-test-images/busybox:1.29-2',
  'registry.k8s.io/e2e-test-images/nginx:1.14-2',
  'registry.k8s.io/e2e-test-images/httpd:2.4.39-4',
  'registry.k8s.io/e2e-test-images/nonewprivs:1.3',
  'gcr.io/k8s-staging-cri-tools/hostnet-nginx-amd64:latest',
  'gcr.io/k8s-staging-cri-tools/test-image-user-uid:latest',
  'gcr.io/k8s-staging-cri-tools/test-image-user-username:latest',
  'gcr.io/k8s-staging-cri-tools/test-image-user-uid-group:latest',
  'gcr.io/k8s-staging-cri-tools/test-image-user-username-group:latest',
  'gcr.io/k8s-staging-cri-tools/test-image-predefined-group:latest',
  'gcr.io/k8s-staging-cri-tools/test-image-latest:latest',
  'gcr.io/k8s-staging-cri-tools/test-image-tag:test',
  'gcr.io/k8s-staging-cri-tools/test-image-tag:all',
  'gcr.io/k8s-staging-cri-tools/test-image-1:latest',
  'gcr.io/k8s-staging-cri-tools/test-image-2:latest',
  'gcr.io/k8s-staging-cri-tools/test-image-3:latest',
  'gcr.io/k8s-staging-cri-tools/test-image-tags:1',
  'gcr.io/k8s-staging-cri-tools/test-image-tags:2',
  'gcr.io/k8s-staging-cri-tools/test-image-tags:3',
];

test('there is a stand-in for every image critest pulls', (t) => {
  const served = new Set(IMAGES.flatMap((i) => i.tags.map((tag) => `${i.host}/${i.repo}:${tag}`)));
  for (const ref of CRITEST_IMAGES) t.true(served.has(ref), ref);
});

test('the image users are those the specs expect', (t) => {
  const user = (repo: string) => IMAGES.find((i) => i.repo.endsWith(`/${repo}`))?.config.User;
  t.is(user('test-image-user-uid'), '1002');
  t.is(user('test-image-user-username'), 'www-data');
  t.is(user('test-image-user-uid-group'), '1003:1004');
  t.is(user('test-image-user-username-group'), 'www-data:1004');
  t.is(user('test-image-predefined-group'), '1000');
  t.is(user('nonewprivs'), '1000');
});

test('the printed config sends both upstream hosts to the registry, with no path prefix and no fallback', (t) => {
  const cfg = parseConfigToml(registryConfigToml('http://127.0.0.1:5999'));
  t.false(cfg.registries.fallbackToUpstream);
  for (const host of ['registry.k8s.io', 'gcr.io']) {
    const eps = endpointsFor(host, cfg.registries);
    t.is(eps.length, 1);
    t.like(eps[0], { host: '127.0.0.1:5999', prefix: '', schemes: ['http'], mirror: true });
  }
});

test('nnp prints its effective uid', async (t) => {
  if (arch() !== 'x64' || process.platform !== 'linux') return t.pass('x86-64 Linux only');
  const dir = await mkdtemp(join(tmpdir(), 'cm-nnp-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const bin = join(dir, 'nnp');
  await writeFile(bin, nnpElf());
  await chmod(bin, 0o755);
  t.is(execFileSync(bin, { encoding: 'utf8' }), `Effective uid: ${process.geteuid!()}\n`);
});

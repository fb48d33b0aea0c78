// User resolution inside the image's rootfs (CRI semantics, never the host's files).
import test, { type ExecutionContext } from 'ava';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { GROUP, PASSWD } from '../../hack/build-test-images.js';
import { readImageUser } from '../../src/provisioner/user.js';

async function rootfs(t: ExecutionContext, files = true) {
  const base = await mkdtemp(join(tmpdir(), 'cm-user-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const r = join(base, 'rootfs');
  await mkdir(join(r, 'etc'), { recursive: true });
  if (files) {
    await writeFile(join(r, 'etc/passwd'), PASSWD);
    await writeFile(join(r, 'etc/group'), GROUP);
  }
  return { base, r };
}

test('names, uids and groups resolve against the image files', async (t) => {
  const { r } = await rootfs(t);
  t.deepEqual(await readImageUser(r, ''), { uid: 0, gid: 0, additionalGids: [0], username: 'root', home: '/root' });
  t.deepEqual(await readImageUser(r, 'tester'), { uid: 1000, gid: 1000, additionalGids: [1000, 10, 100], username: 'tester', home: '/home/tester' });
  t.deepEqual((await readImageUser(r, '1000')).additionalGids, [1000, 10, 100]);
  t.like(await readImageUser(r, 'nobody'), { uid: 65534, gid: 65534 });
  t.like(await readImageUser(r, 'tester:users'), { uid: 1000, gid: 100, additionalGids: [100, 10] });
  t.like(await readImageUser(r, 'tester:4242'), { uid: 1000, gid: 4242 });
  t.like(await readImageUser(r, '1000:wheel'), { uid: 1000, gid: 10 });
});

test('a numeric uid not in passwd is fine with gid 0; unknown names are errors', async (t) => {
  const { r } = await rootfs(t);
  t.deepEqual(await readImageUser(r, '4321'), { uid: 4321, gid: 0, additionalGids: [0], username: undefined, home: undefined });
  t.like(await readImageUser(r, '4321:77'), { uid: 4321, gid: 77 });
  await t.throwsAsync(readImageUser(r, 'nosuchuser'), { message: /no user "nosuchuser"/ });
  await t.throwsAsync(readImageUser(r, 'tester:nosuchgroup'), { message: /no group "nosuchgroup"/ });
});

test('without passwd/group files only numeric ids work', async (t) => {
  const { r } = await rootfs(t, false);
  t.like(await readImageUser(r, '1000'), { uid: 1000, gid: 0 });
  await t.throwsAsync(readImageUser(r, 'tester'));
});

test('a symlinked passwd never reaches the host: links resolve inside the rootfs', async (t) => {
  const { base, r } = await rootfs(t, false);
  const host = join(base, 'host');
  await mkdir(host);
  await writeFile(join(host, 'passwd'), 'hostonly:x:777:777::/:/bin/sh\n');
  // Absolute link to a host path: re-rooted, so it names <rootfs><host>/passwd, which does not exist.
  await symlink(join(host, 'passwd'), join(r, 'etc/passwd'));
  await t.throwsAsync(readImageUser(r, 'hostonly'), { message: /no user/ });
  // Relative link climbing out: clamped at the rootfs.
  await rm(join(r, 'etc/passwd'));
  await symlink('../../../../../../../../' + join(host, 'passwd'), join(r, 'etc/passwd'));
  await t.throwsAsync(readImageUser(r, 'hostonly'));
  // A link to a file of the image itself works.
  await rm(join(r, 'etc/passwd'));
  await mkdir(join(r, 'usr/share'), { recursive: true });
  await writeFile(join(r, 'usr/share/passwd'), PASSWD);
  await symlink('/usr/share/passwd', join(r, 'etc/passwd'));
  t.like(await readImageUser(r, 'tester'), { uid: 1000 });
});

test('a FIFO as /etc/passwd is refused instead of hanging', async (t) => {
  const { r } = await rootfs(t, false);
  execFileSync('mkfifo', [join(r, 'etc/passwd')]);
  await t.throwsAsync(readImageUser(r, 'tester'), { message: /not a regular file/ });
});

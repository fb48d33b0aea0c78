// CRI mounts as the kubelet sends them, checked from inside the container and
// on the host: read-only and read-write binds, single files, recursive
// read-only, the three propagation modes, and readonly_rootfs.
import test, { type ExecutionContext } from 'ava';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MNT_DETACH, MS, native } from '../../src/native/index.js';
import { privilegedPodConfig } from '../helpers/daemon.js';
import { tempDir, useDaemon } from '../helpers/suite.js';

const d = useDaemon('mount tests');
if (d) {
  let pod: string;
  let sandbox: ReturnType<typeof privilegedPodConfig>;
  test.serial.before(async () => {
    // Privileged: the propagation test mounts from inside a privileged container.
    sandbox = privilegedPodConfig('mounts');
    pod = (await d.client.call('RunPodSandbox', { config: sandbox })).pod_sandbox_id;
  });

  const run = (name: string, extra: Record<string, unknown>, command = ['sleep', '3600']) => d.runContainer(pod, sandbox, name, command, extra);

  const sh = async (id: string, script: string) => {
    const r = await d.client.call('ExecSync', { container_id: id, cmd: ['sh', '-c', script], timeout: 10 });
    return { out: Buffer.from(r.stdout).toString(), err: Buffer.from(r.stderr).toString(), code: r.exit_code as number };
  };

  /** The mountinfo line for `path` inside the container: its mount options and optional fields. */
  const mountOptions = async (id: string, path: string) => {
    const line = (await sh(id, 'cat /proc/self/mountinfo')).out.split('\n').filter((l) => l.split(' ')[4] === path).pop() ?? '';
    return line.split(' - ')[0]!.split(' ').slice(5).join(' ');
  };

  /** Host mounts the test makes: unmounted when the test ends, also on failure (deepest first). */
  const hostMounts = (t: ExecutionContext) => {
    const made: string[] = [];
    t.teardown(() => {
      for (const m of made.reverse()) {
        try {
          native().umount2(m, MNT_DETACH);
        } catch {
          // gone already
        }
      }
    });
    return {
      mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null = null) {
        native().mount(source, target, fstype, flags, data);
        made.push(target);
      },
      /** A mount that appeared on the host by propagation. */
      track(target: string) {
        made.push(target);
      },
    };
  };

  test.serial('a read-only mount refuses writes with EROFS and leaves the host file alone; a writable one writes through', async (t) => {
    const dir = await tempDir(t, 'cm-mnt-');
    writeFileSync(join(dir, 'file'), 'host\n');
    const c = await run('ro-rw', {
      mounts: [
        { container_path: '/ro', host_path: dir, readonly: true },
        { container_path: '/rw', host_path: dir, readonly: false },
      ],
    });
    const ro = await sh(c.id, 'echo changed > /ro/file');
    t.not(ro.code, 0);
    t.regex(ro.err, /Read-only file system/);
    t.is(readFileSync(join(dir, 'file'), 'utf8'), 'host\n');
    t.is((await sh(c.id, 'cat /ro/file')).out, 'host\n');
    t.regex(await mountOptions(c.id, '/ro'), /^ro[, ]/);

    const rw = await sh(c.id, 'echo from-container > /rw/new && cat /ro/new');
    t.is(rw.code, 0, rw.err);
    t.is(rw.out, 'from-container\n', 'the read-only view sees what was written through the writable one');
    t.is(readFileSync(join(dir, 'new'), 'utf8'), 'from-container\n');
    t.regex(await mountOptions(c.id, '/rw'), /^rw[, ]/);
  });

  test.serial('read-only keeps the source mount\'s nosuid, nodev and noexec', async (t) => {
    const dir = await tempDir(t, 'cm-mnt-');
    const { mount } = hostMounts(t);
    mount('tmpfs', dir, 'tmpfs', MS.NOSUID | MS.NODEV | MS.NOEXEC, 'size=1m');
    writeFileSync(join(dir, 'x'), 'tmpfs\n');
    const c = await run('ro-flags', { mounts: [{ container_path: '/locked', host_path: dir, readonly: true }] });
    const opts = (await mountOptions(c.id, '/locked')).split(' ')[0]!.split(',');
    for (const o of ['ro', 'nosuid', 'nodev', 'noexec']) t.true(opts.includes(o), `${o} in ${opts.join(',')}`);
    t.is((await sh(c.id, 'cat /locked/x')).out, 'tmpfs\n');
  });

  test.serial('single-file mounts, as the kubelet mounts /etc/hosts and /dev/termination-log', async (t) => {
    const dir = await tempDir(t, 'cm-mnt-');
    writeFileSync(join(dir, 'hosts'), '10.0.0.1 kubelet-hosts\n');
    writeFileSync(join(dir, 'termination-log'), '');
    const c = await run('files', {
      mounts: [
        { container_path: '/etc/hosts', host_path: join(dir, 'hosts'), readonly: true },
        { container_path: '/dev/termination-log', host_path: join(dir, 'termination-log'), readonly: false },
      ],
    });
    t.is((await sh(c.id, 'cat /etc/hosts')).out, '10.0.0.1 kubelet-hosts\n');
    t.not((await sh(c.id, 'echo x >> /etc/hosts')).code, 0);
    const w = await sh(c.id, 'echo "exit reason" > /dev/termination-log; test -f /dev/termination-log && echo file');
    t.is(w.out, 'file\n', w.err);
    t.is(readFileSync(join(dir, 'termination-log'), 'utf8'), 'exit reason\n');
    t.is(readFileSync(join(dir, 'hosts'), 'utf8'), '10.0.0.1 kubelet-hosts\n');
  });

  test.serial('recursive_read_only makes mounts below the source read-only too; plain readonly only the top', async (t) => {
    const st = await d.client.call('Status', {});
    t.true(st.runtime_handlers.every((h: { features: { recursive_read_only_mounts: boolean } }) => h.features.recursive_read_only_mounts));
    const dir = await tempDir(t, 'cm-mnt-');
    mkdirSync(join(dir, 'sub'));
    hostMounts(t).mount('tmpfs', join(dir, 'sub'), 'tmpfs', 0, 'size=1m');
    const c = await run('rro', {
      mounts: [
        { container_path: '/rro', host_path: dir, readonly: true, recursive_read_only: true },
        { container_path: '/ro', host_path: dir, readonly: true },
      ],
    });
    const rro = await sh(c.id, 'echo x > /rro/sub/f');
    t.not(rro.code, 0);
    t.regex(rro.err, /Read-only file system/);
    t.regex(await mountOptions(c.id, '/rro/sub'), /^ro[, ]/);
    // runc's readonly: the top mount only; the submount stays writable.
    t.is((await sh(c.id, 'echo y > /ro/sub/f && echo ok')).out, 'ok\n');
    t.is(readFileSync(join(dir, 'sub', 'f'), 'utf8'), 'y\n');
  });

  test.serial('recursive_read_only without readonly, or with a propagation other than PRIVATE, is refused naming the field', async (t) => {
    const dir = await tempDir(t, 'cm-mnt-');
    for (const [mount, re] of [
      [{ container_path: '/x', host_path: dir, recursive_read_only: true }, /mounts\[0\]\.recursive_read_only needs mounts\[0\]\.readonly/],
      [
        { container_path: '/x', host_path: dir, readonly: true, recursive_read_only: true, propagation: 'PROPAGATION_HOST_TO_CONTAINER' },
        /mounts\[0\]\.recursive_read_only needs mounts\[0\]\.propagation PROPAGATION_PRIVATE/,
      ],
    ] as const) {
      const err = await t.throwsAsync(run('rro-bad', { mounts: [mount] }));
      t.is((err as { code?: number }).code, 3, err?.message); // INVALID_ARGUMENT
      t.regex(err!.message, re);
    }
  });

  test.serial('propagation: rprivate sees nothing later, rslave sees host mounts made after start, rshared also shows container mounts on the host', async (t) => {
    // Teardowns run last-registered first: the mounts go before the directory.
    const base = await tempDir(t, 'cm-prop-');
    const { mount, track } = hostMounts(t);
    const result: Record<string, { inContainer: string; onHost: string[] }> = {};
    for (const mode of ['PROPAGATION_PRIVATE', 'PROPAGATION_HOST_TO_CONTAINER', 'PROPAGATION_BIDIRECTIONAL']) {
      // As critest does: the source is a mount of its own, rshared (rprivate for PRIVATE).
      const src = join(base, mode);
      mkdirSync(src);
      mount(src, src, null, MS.BIND | MS.REC);
      mount(null, src, null, MS.REC | (mode === 'PROPAGATION_PRIVATE' ? MS.PRIVATE : MS.SHARED));
      mkdirSync(join(src, 'data'));
      writeFileSync(join(src, 'data', 'flag'), '');
      mkdirSync(join(src, 'later'));
      const c = await run(`prop-${mode.slice(12).toLowerCase()}`, {
        mounts: [{ container_path: '/vol', host_path: src, propagation: mode }],
        linux: { security_context: { privileged: true } },
      });
      // A host mount made after the container started.
      mount(join(src, 'data'), join(src, 'later'), null, MS.BIND);
      const inContainer = (await sh(c.id, 'ls -A /vol/later')).out.trim();
      // A mount made inside the container.
      const m = await sh(c.id, 'mkdir -p /vol/inner && mount -t tmpfs inner /vol/inner && touch /vol/inner/made-inside');
      t.is(m.code, 0, m.err);
      const onHost = readdirSync(join(src, 'inner'));
      if (onHost.length) track(join(src, 'inner'));
      result[mode] = { inContainer, onHost };
    }
    t.deepEqual(result, {
      PROPAGATION_PRIVATE: { inContainer: '', onHost: [] },
      PROPAGATION_HOST_TO_CONTAINER: { inContainer: 'flag', onHost: [] },
      PROPAGATION_BIDIRECTIONAL: { inContainer: 'flag', onHost: ['made-inside'] },
    });
  });

  test.serial('propagation the host source cannot carry is refused with FAILED_PRECONDITION naming the mount', async (t) => {
    const src = await tempDir(t, 'cm-prop-');
    const { mount } = hostMounts(t);
    mount(src, src, null, MS.BIND);
    mount(null, src, null, MS.PRIVATE);
    for (const [mode, re] of [
      ['PROPAGATION_BIDIRECTIONAL', /mounts\[1\]: host_path ".*" is mounted on ".*" but it is not a shared mount/],
      ['PROPAGATION_HOST_TO_CONTAINER', /mounts\[1\]: host_path ".*" is mounted on ".*" but it is not a shared or slave mount/],
    ] as const) {
      const err = await t.throwsAsync(
        run('prop-bad', {
          mounts: [
            { container_path: '/ok', host_path: src },
            { container_path: '/x', host_path: join(src, 'missing-subdir'), propagation: mode },
          ],
        }),
      );
      t.is((err as { code?: number }).code, 9, err?.message); // FAILED_PRECONDITION
      t.regex(err!.message, re);
    }
  });

  test.serial('readonly_rootfs: / and the pod files are read-only, /dev/shm stays writable, each CRI mount keeps its own flag', async (t) => {
    const dir = await tempDir(t, 'cm-mnt-');
    const c = await run('ro-rootfs', {
      mounts: [
        { container_path: '/data-rw', host_path: dir },
        { container_path: '/data-ro', host_path: dir, readonly: true },
      ],
      linux: { security_context: { readonly_rootfs: true } },
    });
    const probe = async (path: string) => (await sh(c.id, `echo x > ${path} 2>&1 && echo writable`)).out.trim();
    const out: Record<string, string> = {};
    for (const p of ['/rootfile', '/etc/hosts', '/etc/resolv.conf', '/etc/hostname', '/dev/shm/f', '/data-rw/f', '/data-ro/g']) out[p] = await probe(p);
    t.deepEqual(out, {
      '/rootfile': '',
      '/etc/hosts': '',
      '/etc/resolv.conf': '',
      '/etc/hostname': '',
      '/dev/shm/f': 'writable',
      '/data-rw/f': 'writable',
      '/data-ro/g': '',
    });
    t.regex((await sh(c.id, 'touch /rootfile')).err, /Read-only file system/);
    t.regex(await mountOptions(c.id, '/'), /^ro[, ]/);
    t.is(readFileSync(join(dir, 'f'), 'utf8'), 'x\n');
  });

  test.serial('without readonly_rootfs the rootfs and the pod files are writable', async (t) => {
    const c = await run('rw-rootfs', {});
    const r = await sh(c.id, 'echo x > /rootfile && echo "10.1.1.1 extra" >> /etc/hosts && echo ok');
    t.is(r.out, 'ok\n', r.err);
  });
}

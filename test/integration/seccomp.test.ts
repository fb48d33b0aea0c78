// Seccomp (issue 11): what a container's processes can observe under each CRI profile.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { podConfig, containerConfig, privilegedPodConfig, waitFor } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';
import { collect, spdyExec } from '../helpers/stream-client.js';

const d = useDaemon('seccomp tests');
if (d) {
  // Each probe prints "<what>=<exit code>" after the command's own output (2>&1).
  const PROBE = [
    "grep -E '^Seccomp(_filters)?:' /proc/self/status",
    'unshare -U true 2>&1; echo unshare=$?',
    'mount -t tmpfs t /mnt 2>&1; echo mount=$?',
    'hostname seccomp-test 2>&1; echo hostname=$?',
    'echo work > /tmp/f && cat /tmp/f && echo shell=$?',
  ].join('; ');

  async function run(pod: string, cfg: object, name: string, sc: object, script = PROBE): Promise<string> {
    const { container_id } = await d!.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig(name, ['sh', '-c', script], { linux: { security_context: sc } }),
      sandbox_config: cfg,
    });
    await d!.client.call('StartContainer', { container_id });
    const st = await d!.waitExited(container_id);
    return readFileSync(st.log_path, 'utf8')
      .split('\n')
      .map((l) => /^\S+ (?:stdout|stderr) [PF] (.*)$/.exec(l)?.[1] ?? '')
      .join('\n');
  }
  const field = (out: string, key: string) => new RegExp(`^${key}[=:]\\s*(\\S+)`, 'm').exec(out)?.[1];

  test.serial('RuntimeDefault: Seccomp 2; unshare, mount, hostname and keyctl refused with EPERM, shell work fine; ExecSync and Exec too', async (t) => {
    const cfg = podConfig('seccomp-default', {}, join(d.logDir, 'seccomp-default'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    const out = await run(pod, cfg, 'default', { seccomp: { profile_type: 'RuntimeDefault' } });
    t.is(field(out, 'Seccomp'), '2', out);
    t.is(field(out, 'Seccomp_filters'), '1', out);
    t.not(field(out, 'unshare'), '0', out);
    t.regex(out, /unshare.*Operation not permitted/);
    t.not(field(out, 'mount'), '0', out);
    t.not(field(out, 'hostname'), '0', out);
    t.regex(out, /hostname.*Operation not permitted/);
    t.is(field(out, 'shell'), '0', out);
    t.regex(out, /^work$/m);
    // A present message with no type set is RuntimeDefault (the enum's zero value).
    const zero = await run(pod, cfg, 'zero', { seccomp: {} }, "grep '^Seccomp:' /proc/self/status");
    t.is(field(zero, 'Seccomp'), '2', zero);
    // With CAP_SYS_ADMIN the profile allows sethostname (the pod has its own UTS namespace).
    const admin = await run(pod, cfg, 'admin', { seccomp: { profile_type: 'RuntimeDefault' }, capabilities: { add_capabilities: ['SYS_ADMIN'] } });
    t.is(field(admin, 'Seccomp'), '2', admin);
    t.is(field(admin, 'hostname'), '0', admin);
    // keyctl: busybox has no applet, so a static probe from the host is bind-mounted in.
    const probe = join(d.dir, 'keyctl-probe');
    writeFileSync(`${probe}.c`, [
      '#include <errno.h>', '#include <stdio.h>', '#include <string.h>', '#include <sys/syscall.h>', '#include <unistd.h>',
      // KEYCTL_GET_KEYRING_ID (0) of KEY_SPEC_SESSION_KEYRING (-3), creating it (1)
      'int main(void) { long r = syscall(SYS_keyctl, 0, -3, 1); printf("keyctl=%s\\n", r < 0 ? strerror(errno) : "ok"); return 0; }',
    ].join('\n'));
    execFileSync('gcc', ['-static', '-O', '-o', probe, `${probe}.c`]);
    const withProbe = async (name: string, seccomp: object) => {
      const { container_id } = await d.client.call('CreateContainer', {
        pod_sandbox_id: pod,
        config: containerConfig(name, ['/keyctl-probe'], {
          linux: { security_context: { seccomp } },
          mounts: [{ container_path: '/keyctl-probe', host_path: probe, readonly: true }],
        }),
        sandbox_config: cfg,
      });
      await d.client.call('StartContainer', { container_id });
      return readFileSync((await d.waitExited(container_id)).log_path, 'utf8');
    };
    t.regex(await withProbe('keyctl-default', { profile_type: 'RuntimeDefault' }), /keyctl=Operation not permitted/);
    t.regex(await withProbe('keyctl-unconfined', { profile_type: 'Unconfined' }), /keyctl=ok/);
    // The deprecated path form, and ExecSync processes, with and without no_new_privs.
    for (const nnp of [false, true]) {
      const { container_id } = await d.client.call('CreateContainer', {
        pod_sandbox_id: pod,
        config: containerConfig(`sleeper-${nnp}`, ['sleep', '3600'], { linux: { security_context: { seccomp_profile_path: 'runtime/default', no_new_privs: nnp } } }),
        sandbox_config: cfg,
      });
      await d.client.call('StartContainer', { container_id });
      const ex = await d.client.call('ExecSync', { container_id, cmd: ['sh', '-c', PROBE], timeout: 10 });
      const eo = ex.stdout.toString();
      t.is(field(eo, 'Seccomp'), '2', eo);
      t.is(field(eo, 'Seccomp_filters'), '1', eo);
      t.regex(eo, /unshare.*Operation not permitted/);
      t.is(field(eo, 'shell'), '0', eo);
      // Streaming Exec: the same DEBUG container, so the same filter.
      const { url } = await d.client.call('Exec', { container_id, cmd: ['grep', '^Seccomp:', '/proc/self/status'], stdout: true, stderr: false, stdin: false, tty: false });
      const c = await spdyExec(url as string, { stdout: true });
      t.regex((await collect(c.stdout!)).toString(), /^Seccomp:\s+2$/m);
      await c.status;
    }
    await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('Unconfined, an absent profile and privileged: Seccomp 0', async (t) => {
    const cfg = privilegedPodConfig('seccomp-none', join(d.logDir, 'seccomp-none'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    const unconfined = await run(pod, cfg, 'unconfined', { seccomp: { profile_type: 'Unconfined' } });
    t.is(field(unconfined, 'Seccomp'), '0', unconfined);
    t.is(field(unconfined, 'unshare'), '0', unconfined);
    const absent = await run(pod, cfg, 'absent', {}, "grep '^Seccomp:' /proc/self/status");
    t.is(field(absent, 'Seccomp'), '0', absent);
    const priv = await run(pod, cfg, 'privileged', { privileged: true, seccomp: { profile_type: 'RuntimeDefault' } }, "grep '^Seccomp:' /proc/self/status");
    t.is(field(priv, 'Seccomp'), '0', priv);
    await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('Localhost: a profile denying chmod makes chmod fail; a bad profile is INVALID_ARGUMENT naming the file', async (t) => {
    const cfg = podConfig('seccomp-local', {}, join(d.logDir, 'seccomp-local'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    const good = join(d.dir, 'no-chmod.json');
    writeFileSync(good, JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: ['chmod', 'fchmod', 'fchmodat', 'fchmodat2'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
    }));
    const out = await run(pod, cfg, 'no-chmod', { seccomp: { profile_type: 'Localhost', localhost_ref: good } },
      "grep '^Seccomp:' /proc/self/status; touch /tmp/x; chmod 600 /tmp/x 2>&1; echo chmod=$?; echo ok > /tmp/y && echo shell=$?");
    t.is(field(out, 'Seccomp'), '2', out);
    t.not(field(out, 'chmod'), '0', out);
    t.regex(out, /chmod.*Operation not permitted/);
    t.is(field(out, 'shell'), '0', out);
    const bad = join(d.dir, 'bad-profile.json');
    writeFileSync(bad, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['chmod'], action: 'SCMP_ACT_SOMETIMES' }] }));
    for (const sc of [{ seccomp: { profile_type: 'Localhost', localhost_ref: bad } }, { seccomp_profile_path: `localhost/${bad}` }]) {
      const err = await t.throwsAsync(d.client.call('CreateContainer', {
        pod_sandbox_id: pod,
        config: containerConfig('bad', ['true'], { linux: { security_context: sc } }),
        sandbox_config: cfg,
      }));
      t.is((err as { code?: number }).code, status.INVALID_ARGUMENT);
      t.true(err!.message.includes(bad), err!.message);
      t.regex(err!.message, /syscalls\[0\]\.action/);
    }
    const missing = await t.throwsAsync(d.client.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: containerConfig('missing', ['true'], { linux: { security_context: { seccomp: { profile_type: 'Localhost', localhost_ref: '/nonexistent/profile.json' } } } }),
      sandbox_config: cfg,
    }));
    t.is((missing as { code?: number }).code, status.INVALID_ARGUMENT);
    t.regex(missing!.message, /\/nonexistent\/profile\.json/);
    await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  test.serial('the pod\'s profile confines its pause helper (as containerd\'s pause container); none leaves it unconfined', async (t) => {
    const pausePid = async (pod: string) =>
      waitFor('pod pid', async () => {
        const s = await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true });
        const pid = (JSON.parse(s.info.info) as { pid: number }).pid;
        return pid > 0 ? pid : undefined;
      });
    const seccompOf = (pid: number) => /^Seccomp:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    for (const [name, sc, want] of [['pod-default', { seccomp: { profile_type: 'RuntimeDefault' } }, '2'], ['pod-none', {}, '0']] as const) {
      const cfg = podConfig(name, {}, join(d.logDir, name));
      Object.assign(cfg.linux.security_context, sc);
      const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
      t.is(seccompOf(await pausePid(pod)), want, name);
      // A container still starts in it, and the pod stops cleanly.
      const out = await run(pod, cfg, 'in-pod', {}, "echo alive");
      t.regex(out, /^alive$/m);
      await d.client.call('StopPodSandbox', { pod_sandbox_id: pod });
      await d.client.call('RemovePodSandbox', { pod_sandbox_id: pod });
    }
  });
}

import test from 'ava';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code, StatusError } from '../../src/errors.js';
import { chooseSeccomp, resolveProfile, seccompFilter, type Target } from '../../src/security/seccomp/compile.js';
import { profileProblems, runtimeDefaultProfile } from '../../src/security/seccomp/profile.js';
import { parseConfigToml } from '../../src/config.js';
import type { SecurityProfile__Output } from '../../api/generated/runtime/v1/SecurityProfile.js';

const amd64 = (caps: string[] = [], kernel = '6.1.0-27-amd64'): Target => ({ caps, kernel, goarch: 'amd64', scmpArch: 'SCMP_ARCH_X86_64' });
const rules = (text: string, name: string) => text.split('\n').filter((l) => l.split(' ')[2] === name);
const profile = (profile_type: SecurityProfile__Output['profile_type'], localhost_ref = ''): SecurityProfile__Output => ({ profile_type, localhost_ref });

test('choice: a present message defaults to RuntimeDefault; absent or empty path is unconfined unless seccomp_default; deprecated paths honoured', (t) => {
  const f = 'linux.security_context';
  t.deepEqual(chooseSeccomp({ seccomp: profile('RuntimeDefault') }, false, f), { kind: 'runtime-default' });
  t.deepEqual(chooseSeccomp({ seccomp: profile('Unconfined') }, true, f), { kind: 'unconfined' });
  t.deepEqual(chooseSeccomp({ seccomp: profile('Localhost', '/p.json') }, false, f), { kind: 'localhost', path: '/p.json' });
  t.deepEqual(chooseSeccomp({}, false, f), { kind: 'unconfined' });
  t.deepEqual(chooseSeccomp(undefined, false, f), { kind: 'unconfined' });
  t.deepEqual(chooseSeccomp({ seccomp_profile_path: '' }, true, f), { kind: 'runtime-default' });
  t.deepEqual(chooseSeccomp({ seccomp_profile_path: 'runtime/default' }, false, f), { kind: 'runtime-default' });
  t.deepEqual(chooseSeccomp({ seccomp_profile_path: 'docker/default' }, false, f), { kind: 'runtime-default' });
  t.deepEqual(chooseSeccomp({ seccomp_profile_path: 'unconfined' }, true, f), { kind: 'unconfined' });
  t.deepEqual(chooseSeccomp({ seccomp_profile_path: 'localhost//etc/p.json' }, false, f), { kind: 'localhost', path: '/etc/p.json' });
  // Privileged containers are unconfined, as with containerd.
  t.deepEqual(chooseSeccomp({ privileged: true, seccomp: profile('RuntimeDefault') }, true, f), { kind: 'unconfined' });
  const e = t.throws(() => chooseSeccomp({ seccomp_profile_path: 'weird' }, false, f));
  t.is((e as StatusError).status, Code.INVALID_ARGUMENT);
  t.regex(e!.message, /seccomp_profile_path/);
  t.throws(() => chooseSeccomp({ seccomp: profile('Localhost', '') }, false, f), { message: /localhost_ref/ });
  t.is(parseConfigToml('seccomp_default = true').seccompDefault, true);
});

test('RuntimeDefault: capability-dependent rules, kernel-dependent ptrace, arches from archMap, clone masked without SYS_ADMIN', (t) => {
  const p = runtimeDefaultProfile();
  t.deepEqual(profileProblems(p), []);
  const plain = resolveProfile(p, amd64());
  t.regex(plain, /^default errno:1$/m);
  t.deepEqual(plain.split('\n').filter((l) => l.startsWith('arch ')), ['arch x86_64', 'arch x86', 'arch x32']);
  t.deepEqual(rules(plain, 'read'), ['rule allow read']);
  for (const name of ['sethostname', 'mount', 'unshare', 'setns', 'keyctl', 'add_key', 'reboot', 'init_module']) t.deepEqual(rules(plain, name), [], name);
  t.deepEqual(rules(plain, 'clone'), [`rule allow clone 0:masked_eq:${0x7e020000}:0`]);
  t.deepEqual(rules(plain, 'clone3'), ['rule errno:38 clone3']);
  t.deepEqual(rules(plain, 'socket'), ['rule allow socket 0:ne:40:0']);
  t.is(rules(plain, 'personality').length, 5);
  t.deepEqual(rules(plain, 'arch_prctl'), ['rule allow arch_prctl']);
  t.deepEqual(rules(plain, 'cacheflush'), []);
  t.deepEqual(rules(plain, 'ptrace'), ['rule allow ptrace']);
  t.deepEqual(rules(resolveProfile(p, amd64([], '4.4.0')), 'ptrace'), []);
  const admin = resolveProfile(p, amd64(['CAP_SYS_ADMIN']));
  for (const name of ['sethostname', 'setdomainname', 'mount', 'umount2', 'unshare', 'setns']) t.deepEqual(rules(admin, name), [`rule allow ${name}`], name);
  t.deepEqual(rules(admin, 'clone'), ['rule allow clone']);
  t.deepEqual(rules(admin, 'clone3'), ['rule allow clone3']);
  t.deepEqual(rules(resolveProfile(p, amd64(['CAP_SYS_TIME'])), 'settimeofday'), ['rule allow settimeofday']);
  const arm = resolveProfile(p, { caps: [], kernel: '6.1', goarch: 'arm64', scmpArch: 'SCMP_ARCH_AARCH64' });
  t.deepEqual(rules(arm, 'cacheflush'), ['rule allow cacheflush']);
  t.deepEqual(rules(arm, 'arch_prctl'), []);
  t.true(arm.includes('arch aarch64\narch arm\n'));
});

test('Localhost: explicit architectures, rules equal to the default dropped, bad files named with their entry', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'seccomp-unit-'));
  try {
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [
        { names: ['chmod'], action: 'SCMP_ACT_ERRNO' },
        { names: ['read'], action: 'SCMP_ACT_ALLOW' },
        { name: 'kill', action: 'SCMP_ACT_KILL_PROCESS', args: [{ index: 1, value: 9, op: 'SCMP_CMP_EQ' }] },
      ],
    }));
    const text = seccompFilter({ kind: 'localhost', path: good }, amd64(), 'f')!;
    t.is(text, ['default allow', 'arch x86_64', 'rule errno:1 chmod', 'rule kill_process kill 1:eq:9:0'].join('\n'));
    const cases: [unknown, RegExp][] = [
      ['{', /not valid JSON/],
      [{ defaultAction: 'SCMP_ACT_MAYBE' }, /defaultAction/],
      [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 7, value: 1, op: 'SCMP_CMP_EQ' }] }] }, /syscalls\[0\]\.args\[0\]\.index/],
      [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: [], action: 'SCMP_ACT_ERRNO' }] }, /syscalls\[0\]\.names/],
      [{ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_NOTIFY' }] }, /SCMP_ACT_NOTIFY/],
      [{ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_Z80'] }, /architectures\[0\]/],
    ];
    for (const [content, re] of cases) {
      const path = join(dir, 'bad.json');
      writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
      const e = t.throws(() => seccompFilter({ kind: 'localhost', path }, amd64(), 'linux.security_context'));
      t.is((e as StatusError).status, Code.INVALID_ARGUMENT);
      t.true(e!.message.includes(path));
      t.regex(e!.message, re);
    }
    t.throws(() => seccompFilter({ kind: 'localhost', path: 'relative.json' }, amd64(), 'f'), { message: /must be absolute/ });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('native seccompCompile: RuntimeDefault compiles to a BPF program (cached: the second call is fast); a bad filter throws naming the line', async (t) => {
  const { native } = await import('../../src/native/index.js');
  const text = resolveProfile(runtimeDefaultProfile(), amd64());
  const prog = native().seccompCompile(text);
  t.true(prog.length > 0 && prog.length % 8 === 0);
  const t0 = performance.now();
  const again = native().seccompCompile(text);
  const ms = performance.now() - t0;
  t.true(again.equals(prog));
  t.true(ms < 5, `a cached program comes back without recompiling (${ms.toFixed(2)} ms)`);
  t.throws(() => native().seccompCompile('default allow\nrule sometimes read'), { message: /bad action sometimes/ });
  t.throws(() => native().seccompCompile('rule allow read'), { message: /no default action/ });
  // A syscall libseccomp does not know is skipped, as runc does.
  t.true(native().seccompCompile('default errno:1\narch native\nrule allow read\nrule allow no_such_syscall').length > 0);
});

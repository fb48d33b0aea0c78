// Which seccomp profile a container gets (CRI semantics), and the profile resolved for that
// container (its capabilities, this kernel, this architecture) into the filter text the addon and
// the launch helper compile with libseccomp (addon/common/seccomp_filter.h documents the format).
import { arch as osArch, release } from 'node:os';
import { invalidArgument } from '../../errors.js';
import type { SecurityProfile__Output } from '../../../api/generated/runtime/v1/SecurityProfile.js';
import { loadLocalhostProfile, runtimeDefaultProfile, type SeccompFilter, type SeccompProfile } from './profile.js';

export type SeccompChoice = { kind: 'unconfined' } | { kind: 'runtime-default' } | { kind: 'localhost'; path: string };

export interface SeccompRequest {
  seccomp?: SecurityProfile__Output | null;
  seccomp_profile_path?: string;
  privileged?: boolean;
}

/**
 * The CRI's rules: a present `seccomp` message decides (its zero value is RuntimeDefault); else the
 * deprecated `seccomp_profile_path` ("runtime/default", "docker/default", "unconfined",
 * "localhost/<abs path>"); else (absent, or "") unconfined, unless `seccompDefault` (config key
 * seccomp_default) says RuntimeDefault. Privileged containers are unconfined, as in containerd.
 */
export function chooseSeccomp(sc: SeccompRequest | null | undefined, seccompDefault: boolean, field: string): SeccompChoice {
  if (sc?.privileged) return { kind: 'unconfined' };
  const p = sc?.seccomp;
  if (p) {
    if (p.profile_type === 'Unconfined') return { kind: 'unconfined' };
    if (p.profile_type === 'Localhost') {
      if (!p.localhost_ref) throw invalidArgument(`${field}.seccomp.localhost_ref: empty for a Localhost profile`);
      return { kind: 'localhost', path: p.localhost_ref };
    }
    if (p.profile_type === 'RuntimeDefault' || (p.profile_type as unknown) === 0) return { kind: 'runtime-default' };
    throw invalidArgument(`${field}.seccomp.profile_type: unknown type ${String(p.profile_type)}`);
  }
  const path = sc?.seccomp_profile_path ?? '';
  if (path === '') return seccompDefault ? { kind: 'runtime-default' } : { kind: 'unconfined' };
  if (path === 'runtime/default' || path === 'docker/default') return { kind: 'runtime-default' };
  if (path === 'unconfined') return { kind: 'unconfined' };
  if (path.startsWith('localhost/')) return { kind: 'localhost', path: path.slice('localhost/'.length) };
  throw invalidArgument(`${field}.seccomp_profile_path: unknown profile "${path}" (runtime/default, docker/default, unconfined or localhost/<path>)`);
}

export interface Target {
  /** Capabilities the container holds (CAP_…). */
  caps: string[];
  /** Kernel version, "6.1.0-…" (os.release()). */
  kernel: string;
  /** Go's name for the architecture, as profiles' includes.arches use it (amd64, arm64, …). */
  goarch: string;
  /** The native architecture as profiles name it (SCMP_ARCH_X86_64, …). */
  scmpArch: string;
}

const NODE_ARCH: Record<string, [string, string]> = {
  x64: ['amd64', 'SCMP_ARCH_X86_64'],
  arm64: ['arm64', 'SCMP_ARCH_AARCH64'],
  ia32: ['386', 'SCMP_ARCH_X86'],
  arm: ['arm', 'SCMP_ARCH_ARM'],
  ppc64: ['ppc64le', 'SCMP_ARCH_PPC64LE'],
  s390x: ['s390x', 'SCMP_ARCH_S390X'],
  riscv64: ['riscv64', 'SCMP_ARCH_RISCV64'],
};

export function hostTarget(caps: string[]): Target {
  const [goarch, scmpArch] = NODE_ARCH[osArch()] ?? [osArch(), ''];
  return { caps, kernel: release(), goarch, scmpArch };
}

function version(v: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(v);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

const atLeast = (have: string, want: string) => {
  const [a, b] = version(have);
  const [c, d] = version(want);
  return a > c || (a === c && b >= d);
};

/** moby's rule filter: includes must all hold; any exclude that holds drops the rule. */
function applies(t: Target, inc: SeccompFilter | undefined, exc: SeccompFilter | undefined): boolean {
  if (inc?.arches?.length && !inc.arches.includes(t.goarch)) return false;
  if (inc?.caps?.length && !inc.caps.every((c) => t.caps.includes(c))) return false;
  if (inc?.minKernel && !atLeast(t.kernel, inc.minKernel)) return false;
  if (exc?.arches?.length && exc.arches.includes(t.goarch)) return false;
  if (exc?.caps?.length && exc.caps.some((c) => t.caps.includes(c))) return false;
  if (exc?.minKernel && atLeast(t.kernel, exc.minKernel)) return false;
  return true;
}

const EPERM = 1;

function action(a: string, errnoRet: number | undefined): string {
  switch (a) {
    case 'SCMP_ACT_ALLOW': return 'allow';
    case 'SCMP_ACT_ERRNO': return `errno:${errnoRet ?? EPERM}`;
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD': return 'kill_thread';
    case 'SCMP_ACT_KILL_PROCESS': return 'kill_process';
    case 'SCMP_ACT_TRAP': return 'trap';
    case 'SCMP_ACT_LOG': return 'log';
    case 'SCMP_ACT_TRACE': return `trace:${errnoRet ?? EPERM}`;
    default: throw invalidArgument(`seccomp: unknown action ${a}`);
  }
}

const libseccompArch = (a: string) => a.replace(/^SCMP_ARCH_/, '').toLowerCase();

/** The profile as filter text for one container. */
export function resolveProfile(p: SeccompProfile, t: Target): string {
  const def = action(p.defaultAction, p.defaultErrnoRet);
  const lines = [`default ${def}`];
  let arches: string[] = p.architectures?.length ? p.architectures : [];
  if (!arches.length) {
    const m = (p.archMap ?? []).find((e) => e.architecture === t.scmpArch);
    arches = m ? [m.architecture, ...(m.subArchitectures ?? [])] : [];
  }
  lines.push(...(arches.length ? arches.map((a) => `arch ${libseccompArch(a)}`) : ['arch native']));
  for (const r of p.syscalls ?? []) {
    if (!applies(t, r.includes, r.excludes)) continue;
    const act = action(r.action, r.errnoRet);
    // libseccomp refuses a rule that does what the default does; it changes nothing anyway.
    if (act === def) continue;
    const conds = (r.args ?? []).map((a) => `${a.index}:${a.op.replace(/^SCMP_CMP_/, '').toLowerCase()}:${a.value}:${a.valueTwo ?? 0}`);
    for (const name of r.names ?? (r.name ? [r.name] : [])) lines.push(['rule', act, name, ...conds].join(' '));
  }
  return lines.join('\n');
}

/** The filter text for a container, or undefined when unconfined. */
export function seccompFilter(choice: SeccompChoice, t: Target, field: string): string | undefined {
  if (choice.kind === 'unconfined') return undefined;
  const profile = choice.kind === 'runtime-default' ? runtimeDefaultProfile() : loadLocalhostProfile(choice.path, field);
  return resolveProfile(profile, t);
}

// Seccomp profiles in the OCI/Docker JSON format: the built-in RuntimeDefault (default.json, the
// same effect as containerd's and moby's default) and Localhost files, validated here so that a
// bad one fails CreateContainer with INVALID_ARGUMENT naming the file and the entry.
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { invalidArgument } from '../../errors.js';
import { projectRoot } from '../../util/paths.js';

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface SeccompFilter {
  caps?: string[];
  arches?: string[];
  minKernel?: string;
}

export interface SeccompRule {
  name?: string;
  names?: string[];
  action: string;
  errnoRet?: number;
  args?: SeccompArg[] | null;
  includes?: SeccompFilter;
  excludes?: SeccompFilter;
  comment?: string;
}

export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[] | null;
  archMap?: { architecture: string; subArchitectures: string[] | null }[] | null;
  syscalls?: SeccompRule[] | null;
}

export const ACTIONS = new Set([
  'SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_KILL_PROCESS',
  'SCMP_ACT_TRAP', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE',
]);
export const OPS = new Set(['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ']);
export const ARCHES = new Set([
  'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_MIPS',
  'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32',
  'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_RISCV64',
]);

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isU32 = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isU64 = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStrings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === 'string' && s.length > 0 && !/\s/.test(s));

/** The problems of a parsed profile, each naming its entry ("syscalls[3].args[0].op: ..."). */
export function profileProblems(p: unknown): string[] {
  const bad: string[] = [];
  if (!isObj(p)) return ['the profile must be a JSON object'];
  if (typeof p.defaultAction !== 'string' || !ACTIONS.has(p.defaultAction)) bad.push(`defaultAction: unknown action ${JSON.stringify(p.defaultAction)}`);
  if (p.defaultErrnoRet !== undefined && !isU32(p.defaultErrnoRet)) bad.push('defaultErrnoRet: expected a non-negative integer');
  if (p.architectures != null) {
    if (!isStrings(p.architectures)) bad.push('architectures: expected a list of strings');
    else (p.architectures as string[]).forEach((a, i) => ARCHES.has(a) || bad.push(`architectures[${i}]: unknown architecture "${a}"`));
  }
  if (p.archMap != null && !Array.isArray(p.archMap)) bad.push('archMap: expected a list');
  if (Array.isArray(p.archMap)) {
    p.archMap.forEach((m: unknown, i) => {
      if (!isObj(m) || typeof m.architecture !== 'string' || !ARCHES.has(m.architecture)) bad.push(`archMap[${i}].architecture: unknown architecture`);
      else if (m.subArchitectures != null && !(isStrings(m.subArchitectures) && (m.subArchitectures as string[]).every((a) => ARCHES.has(a))))
        bad.push(`archMap[${i}].subArchitectures: expected known architectures`);
    });
  }
  for (const k of ['flags', 'listenerPath', 'listenerMetadata']) {
    if (p[k] !== undefined && p[k] !== null && !(Array.isArray(p[k]) && (p[k] as unknown[]).length === 0) && p[k] !== '')
      bad.push(`${k}: not supported by cri-mesos`);
  }
  if (p.syscalls != null && !Array.isArray(p.syscalls)) bad.push('syscalls: expected a list');
  if (Array.isArray(p.syscalls)) {
    p.syscalls.forEach((r: unknown, i) => {
      const at = `syscalls[${i}]`;
      if (!isObj(r)) return bad.push(`${at}: expected an object`);
      const names = r.names ?? (r.name !== undefined ? [r.name] : undefined);
      if (!isStrings(names) || (names as string[]).length === 0) bad.push(`${at}.names: expected a non-empty list of syscall names`);
      if (r.action === 'SCMP_ACT_NOTIFY') bad.push(`${at}.action: SCMP_ACT_NOTIFY needs a listener, which cri-mesos does not run`);
      else if (typeof r.action !== 'string' || !ACTIONS.has(r.action)) bad.push(`${at}.action: unknown action ${JSON.stringify(r.action)}`);
      if (r.errnoRet !== undefined && !isU32(r.errnoRet)) bad.push(`${at}.errnoRet: expected a non-negative integer`);
      if (r.args != null && !Array.isArray(r.args)) bad.push(`${at}.args: expected a list`);
      if (Array.isArray(r.args)) {
        r.args.forEach((a: unknown, j) => {
          if (!isObj(a)) return bad.push(`${at}.args[${j}]: expected an object`);
          if (!(typeof a.index === 'number' && Number.isInteger(a.index) && a.index >= 0 && a.index <= 5)) bad.push(`${at}.args[${j}].index: expected 0..5`);
          if (!isU64(a.value)) bad.push(`${at}.args[${j}].value: expected a non-negative integer`);
          if (a.valueTwo !== undefined && !isU64(a.valueTwo)) bad.push(`${at}.args[${j}].valueTwo: expected a non-negative integer`);
          if (typeof a.op !== 'string' || !OPS.has(a.op)) bad.push(`${at}.args[${j}].op: unknown operator ${JSON.stringify(a.op)}`);
          return undefined;
        });
      }
      for (const k of ['includes', 'excludes'] as const) {
        const f = r[k];
        if (f === undefined || f === null) continue;
        if (!isObj(f)) bad.push(`${at}.${k}: expected an object`);
        else {
          if (f.caps != null && !isStrings(f.caps)) bad.push(`${at}.${k}.caps: expected a list of strings`);
          if (f.arches != null && !isStrings(f.arches)) bad.push(`${at}.${k}.arches: expected a list of strings`);
          if (f.minKernel != null && (typeof f.minKernel !== 'string' || !/^\d+\.\d+/.test(f.minKernel))) bad.push(`${at}.${k}.minKernel: expected a version such as "4.8"`);
        }
      }
      return undefined;
    });
  }
  return bad;
}

let runtimeDefault: SeccompProfile | undefined;

/** The built-in RuntimeDefault profile (src/security/seccomp/default.json). */
export function runtimeDefaultProfile(): SeccompProfile {
  runtimeDefault ??= JSON.parse(readFileSync(join(projectRoot(), 'src', 'security', 'seccomp', 'default.json'), 'utf8')) as SeccompProfile;
  return runtimeDefault;
}

/** A Localhost profile: an absolute path to a JSON file; anything wrong is INVALID_ARGUMENT naming it. */
export function loadLocalhostProfile(path: string, field: string): SeccompProfile {
  if (!isAbsolute(path)) throw invalidArgument(`${field}: seccomp profile path "${path}" must be absolute`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw invalidArgument(`${field}: cannot read seccomp profile "${path}": ${(err as Error).message}`, err);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw invalidArgument(`${field}: seccomp profile "${path}" is not valid JSON: ${(err as Error).message}`, err);
  }
  const bad = profileProblems(parsed);
  if (bad.length) throw invalidArgument(`${field}: seccomp profile "${path}" is invalid: ${bad.slice(0, 5).join('; ')}`);
  return parsed as SeccompProfile;
}

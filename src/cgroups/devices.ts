// Device access rules of a cgroup, and their two back ends:
//   - cgroup v1: the `devices` controller's devices.deny / devices.allow files;
//   - cgroup2: a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup (runc's
//     devicefilter does the same), built here and loaded by the addon.
// Rules read as v1's list: in order, a later rule overrides an earlier one for what they both
// cover. Lists here start with a deny of everything (or an allow of everything), then allows.
import { writeCgroupFile } from './fs.js';
import { native } from '../native/index.js';

export type DeviceType = 'a' | 'c' | 'b';

export interface DeviceRule {
  allow: boolean;
  /** 'a' = char and block. */
  type: DeviceType;
  /** undefined = any. */
  major?: number;
  minor?: number;
  /** A non-empty subset of "rwm". */
  access: string;
}

const ANY = '*';

/** "c 1:3 rwm", as devices.allow / devices.deny take it. */
export function v1RuleText(r: DeviceRule): string {
  if (r.type === 'a' && r.major === undefined && r.minor === undefined && r.access === 'rwm') return 'a';
  return `${r.type} ${r.major ?? ANY}:${r.minor ?? ANY} ${r.access}`;
}

/** Whether `access` is a non-empty combination of r, w and m, each at most once. */
export function validAccess(access: string): boolean {
  return access.length > 0 && /^[rwm]+$/.test(access) && new Set(access).size === access.length;
}

/**
 * v1: writes the rules in order to the cgroup `dir` of the devices hierarchy. A first "deny a"
 * empties the list (the cgroup starts with its parent's), each allow adds to it.
 */
export async function applyV1DeviceRules(dir: string, rules: DeviceRule[]): Promise<void> {
  for (const r of rules) await writeCgroupFile(dir, r.allow ? 'devices.allow' : 'devices.deny', v1RuleText(r));
}

/** cgroup2: loads the rules' program and attaches it to `dir`, replacing any it had before. */
export function applyV2DeviceRules(dir: string, rules: DeviceRule[]): void {
  native().attachDeviceFilter(dir, deviceFilterProgram(rules));
}

// ---- eBPF (include/uapi/linux/bpf.h) ----
// The program gets struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; } in r1,
// access_type = (BPF_DEVCG_ACC_* << 16) | BPF_DEVCG_DEV_*, and returns 1 to allow, 0 to deny.

const DEV_BLOCK = 1;
const DEV_CHAR = 2;
const ACC_MKNOD = 1;
const ACC_READ = 2;
const ACC_WRITE = 4;

const R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5;
// opcodes: class | op | source
const LDX_MEM_W = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const ALU32_AND_K = 0x54; // BPF_ALU | BPF_AND | BPF_K
const ALU32_RSH_K = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const ALU32_MOV_K = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const ALU32_MOV_X = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JMP_JNE_K = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const JMP_JNE_X = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JMP_JEQ_K = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_EXIT = 0x95; // BPF_JMP | BPF_EXIT

/** One struct bpf_insn: code, dst_reg:4 | src_reg:4, s16 off, s32 imm (little-endian hosts). */
type Insn = [code: number, dst: number, src: number, off: number, imm: number];

function accessMask(access: string): number {
  return (access.includes('m') ? ACC_MKNOD : 0) | (access.includes('r') ? ACC_READ : 0) | (access.includes('w') ? ACC_WRITE : 0);
}

/**
 * The rules as a device program: the rules are tried last to first, the first that matches
 * decides; nothing matching is denied (after a rule that matches everything, nothing is tried). An allow matches when every access asked for is in it,
 * a deny when any is.
 */
export function deviceFilterInsns(rules: DeviceRule[]): Insn[] {
  const out: Insn[] = [
    [LDX_MEM_W, R2, R1, 0, 0], // r2 = access_type
    [ALU32_AND_K, R2, 0, 0, 0xffff], // r2 = device type
    [LDX_MEM_W, R3, R1, 0, 0],
    [ALU32_RSH_K, R3, 0, 0, 16], // r3 = access asked for
    [LDX_MEM_W, R4, R1, 4, 0], // r4 = major
    [LDX_MEM_W, R5, R1, 8, 0], // r5 = minor
  ];
  for (const r of [...rules].reverse()) {
    // Each check jumps past the rest of this rule's block when it does not match; `next` marks
    // those jumps, patched once the block's length is known.
    const block: Insn[] = [];
    const next: number[] = [];
    const skip = (insn: Insn) => {
      next.push(block.length);
      block.push(insn);
    };
    if (r.type !== 'a') skip([JMP_JNE_K, R2, 0, 0, r.type === 'c' ? DEV_CHAR : DEV_BLOCK]);
    const mask = accessMask(r.access);
    if (mask !== (ACC_MKNOD | ACC_READ | ACC_WRITE)) {
      block.push([ALU32_MOV_X, R1, R3, 0, 0], [ALU32_AND_K, R1, 0, 0, mask]);
      if (r.allow) skip([JMP_JNE_X, R1, R3, 0, 0]); // something asked for is not allowed
      else skip([JMP_JEQ_K, R1, 0, 0, 0]); // nothing asked for is denied
    }
    if (r.major !== undefined) skip([JMP_JNE_K, R4, 0, 0, r.major]);
    if (r.minor !== undefined) skip([JMP_JNE_K, R5, 0, 0, r.minor]);
    block.push([ALU32_MOV_K, R0, 0, 0, r.allow ? 1 : 0], [JMP_EXIT, 0, 0, 0, 0]);
    for (const i of next) block[i][3] = block.length - i - 1;
    out.push(...block);
    // A rule for every device and access decides everything: the verifier refuses unreachable code.
    if (next.length === 0) return out;
  }
  out.push([ALU32_MOV_K, R0, 0, 0, 0], [JMP_EXIT, 0, 0, 0, 0]);
  return out;
}

export function deviceFilterProgram(rules: DeviceRule[]): Buffer {
  const insns = deviceFilterInsns(rules);
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, dst, src, off, imm], i) => {
    buf.writeUInt8(code, i * 8);
    buf.writeUInt8((src << 4) | dst, i * 8 + 1);
    buf.writeInt16LE(off, i * 8 + 2);
    buf.writeInt32LE(imm, i * 8 + 4);
  });
  return buf;
}

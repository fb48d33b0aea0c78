// CRI userns_options → the pod's user namespace (Kubernetes' hostUsers: false, KEP-127). The
// kubelet sends mode POD with the pod's uid and gid mappings to RunPodSandbox and the same to
// every CreateContainer of the pod. Validated as containerd does (mode NODE takes no mappings,
// mode POD needs both, other modes are unsupported), and as the kernel will take them: every
// range non-empty, inside the 32-bit id space, none overlapping another (container or host
// side), at most 340 of them. cri-mesos also needs container id 0 mapped: the container's init
// becomes the namespace's root to set the container up. Errors name the field.
import { existsSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import type { IDMapping__Output } from '../../../api/generated/runtime/v1/IDMapping.js';
import type { NamespaceOption__Output } from '../../../api/generated/runtime/v1/NamespaceOption.js';
import { hostIdOf, type IdMap, type UserNamespaceConfig } from '../../containerizer/mesos/isolator.js';
import { invalidArgument } from '../../errors.js';
import { native } from '../../native/index.js';

/** The kernel's limit on the ranges of one uid_map or gid_map (since 4.15). */
const MAX_RANGES = 340;
/** The kernel maps ids up to 2^32 - 2: (u32)-1 is never an id. */
const ID_LIMIT = 0xffffffff;

/**
 * The user namespace `opts` asks for: undefined for none (no userns_options, or mode NODE); the
 * mappings for mode POD. `field` is the security context's ("config.linux.security_context").
 */
export function userNamespace(opts: NamespaceOption__Output | null | undefined, field: string): UserNamespaceConfig | undefined {
  const u = opts?.userns_options;
  if (!u) return undefined;
  const f = `${field}.namespace_options.userns_options`;
  const mode = String(u.mode);
  if (mode === 'NODE') {
    if (u.uids.length || u.gids.length) {
      throw invalidArgument(`${f}: mode NODE takes no mappings, got ${u.uids.length} in uids and ${u.gids.length} in gids`);
    }
    return undefined;
  }
  if (mode !== 'POD') throw invalidArgument(`${f}.mode ${mode}: unsupported user namespace mode (POD or NODE)`);
  return { uids: idMaps(u.uids, `${f}.uids`), gids: idMaps(u.gids, `${f}.gids`) };
}

function idMaps(list: IDMapping__Output[], field: string): IdMap[] {
  if (list.length === 0) throw invalidArgument(`${field} must not be empty with mode POD`);
  if (list.length > MAX_RANGES) throw invalidArgument(`${field} has ${list.length} ranges; the kernel takes at most ${MAX_RANGES}`);
  const maps = list.map((m, i) => {
    const at = `${field}[${i}]`;
    const r: IdMap = { containerId: m.container_id, hostId: m.host_id, length: m.length };
    for (const [name, v] of [['container_id', r.containerId], ['host_id', r.hostId], ['length', r.length]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > ID_LIMIT) throw invalidArgument(`${at}.${name} ${String(v)} is not a 32-bit id`);
    }
    if (r.length === 0) throw invalidArgument(`${at}.length must be greater than 0`);
    if (r.containerId + r.length > ID_LIMIT) throw invalidArgument(`${at}: container_id ${r.containerId} + length ${r.length} overflows the 32-bit id space`);
    if (r.hostId + r.length > ID_LIMIT) throw invalidArgument(`${at}: host_id ${r.hostId} + length ${r.length} overflows the 32-bit id space`);
    return r;
  });
  for (let i = 0; i < maps.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = maps[j]!;
      const b = maps[i]!;
      if (overlaps(a.containerId, a.length, b.containerId, b.length)) throw invalidArgument(`${field}[${i}] overlaps ${field}[${j}] in container ids`);
      if (overlaps(a.hostId, a.length, b.hostId, b.length)) throw invalidArgument(`${field}[${i}] overlaps ${field}[${j}] in host ids`);
    }
  }
  if (hostIdOf(maps, 0) === undefined) throw invalidArgument(`${field} must map container id 0 (the container's root, which sets the container up)`);
  return maps;
}

function overlaps(a: number, al: number, b: number, bl: number): boolean {
  return a < b + bl && b < a + al;
}

/** Both sets of mappings equal, range by range in order (as containerd compares them). */
export function sameMaps(a: IdMap[], b: IdMap[]): boolean {
  return a.length === b.length && a.every((m, i) => m.containerId === b[i]!.containerId && m.hostId === b[i]!.hostId && m.length === b[i]!.length);
}

/**
 * A container's userns_options against its pod's: the same mappings (the kubelet sends the pod's
 * to each container), or neither has one. INVALID_ARGUMENT names the field.
 */
export function checkContainerUserns(container: UserNamespaceConfig | undefined, pod: UserNamespaceConfig | undefined, field: string, podId: string): void {
  const f = `${field}.namespace_options.userns_options`;
  if (container && !pod) throw invalidArgument(`${f}: the container asks for a user namespace (mode POD) but its pod ${podId} runs in the host's`);
  if (!container && pod) throw invalidArgument(`${f}: pod ${podId} runs in a user namespace; its containers must ask for it (mode POD with the pod's uids and gids)`);
  if (!container || !pod) return;
  if (!sameMaps(container.uids, pod.uids)) throw invalidArgument(`${f}.uids differ from the pod's (${mapsText(pod.uids)}); a container runs in its pod's user namespace`);
  if (!sameMaps(container.gids, pod.gids)) throw invalidArgument(`${f}.gids differ from the pod's (${mapsText(pod.gids)}); a container runs in its pod's user namespace`);
}

export function mapsText(maps: IdMap[]): string {
  return maps.map((m) => `${m.containerId}:${m.hostId}:${m.length}`).join(', ');
}

/** Every id in `ids` is mapped by `maps`, or INVALID_ARGUMENT naming `field` and where the mappings come from. */
export function checkMapped(ids: number[], maps: IdMap[], field: string, what: string): void {
  for (const id of ids) {
    if (hostIdOf(maps, id) === undefined) throw invalidArgument(`${field}: ${what} ${id} is not mapped in the pod's user namespace (userns_options ${mapsText(maps)})`);
  }
}

let supported: boolean | undefined;

/**
 * User namespaces as cri-mesos builds them: the kernel makes them (/proc/self/ns/user, and
 * user.max_user_namespaces above 0), has idmapped mounts (mount_setattr) and takes an overlay
 * over idmapped layers (Linux 5.19+).
 */
export function userNamespacesSupported(): boolean {
  supported ??= probe();
  return supported;
}

function probe(): boolean {
  const [major = 0, minor = 0] = release().split(/[.-]/).map(Number);
  if (major < 5 || (major === 5 && minor < 19)) return false;
  if (!existsSync('/proc/self/ns/user')) return false;
  try {
    if (Number(readFileSync('/proc/sys/user/max_user_namespaces', 'utf8').trim()) <= 0) return false;
  } catch {
    return false;
  }
  return native().hasMountSetattr();
}

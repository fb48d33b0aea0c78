// CRI mounts → the filesystem/linux isolator's mounts, validated as containerd
// does before anything is created: absolute paths, recursive read-only only
// where it can be done, and the host source's propagation able to carry what
// the mount asks for.
import { isAbsolute } from 'node:path';
import type { Mount__Output } from '../../../api/generated/runtime/v1/Mount.js';
import type { CriMount } from '../../containerizer/mesos/isolator.js';
import { native } from '../../native/index.js';
import { ownMounts, propagationOf, type MountInfoEntry } from '../../util/mountinfo.js';
import { failedPrecondition, invalidArgument, unimplemented } from '../../errors.js';

let rro: boolean | undefined;

/** Recursive read-only mounts need mount_setattr (Linux 5.12+); advertised in Status only where it works. */
export function recursiveReadOnlySupported(): boolean {
  rro ??= native().hasMountSetattr();
  return rro;
}

export function criMounts(mounts: Mount__Output[]): CriMount[] {
  let table: MountInfoEntry[] | undefined; // read once, and only for a mount that propagates
  return mounts.map((m, i) => {
    const field = `mounts[${i}]`;
    if (!m.container_path || !isAbsolute(m.container_path)) throw invalidArgument(`${field}.container_path "${m.container_path}" must be absolute`);
    if (m.image?.image) throw unimplemented(`${field}.image: image volumes are not supported by cri-mesos yet`);
    if (!m.host_path || !isAbsolute(m.host_path)) throw invalidArgument(`${field}.host_path "${m.host_path}" must be absolute`);
    const propagation = (m.propagation || 'PROPAGATION_PRIVATE') as CriMount['propagation'];
    if (m.recursive_read_only) {
      if (!m.readonly) throw invalidArgument(`${field}.recursive_read_only needs ${field}.readonly`);
      if (propagation !== 'PROPAGATION_PRIVATE') throw invalidArgument(`${field}.recursive_read_only needs ${field}.propagation PROPAGATION_PRIVATE, not ${propagation}`);
      if (!recursiveReadOnlySupported()) throw failedPrecondition(`${field}.recursive_read_only: this kernel has no mount_setattr (Linux 5.12+)`);
    }
    if (propagation !== 'PROPAGATION_PRIVATE') checkSourcePropagation(field, m.host_path, propagation, (table ??= ownMounts()));
    return { containerPath: m.container_path, hostPath: m.host_path, readonly: m.readonly, recursiveReadOnly: m.recursive_read_only, propagation };
  });
}

/** As containerd: rshared needs a shared source mount, rslave a shared or slave one. A missing source is created later, so it has its parent's. */
function checkSourcePropagation(field: string, hostPath: string, propagation: CriMount['propagation'], mounts: MountInfoEntry[]): void {
  const p = propagationOf(hostPath, mounts);
  if (!p) throw failedPrecondition(`${field}: no mount found for host_path "${hostPath}"`);
  if (propagation === 'PROPAGATION_BIDIRECTIONAL' && !p.shared) {
    throw failedPrecondition(`${field}: host_path "${hostPath}" is mounted on "${p.mountPoint}" but it is not a shared mount (PROPAGATION_BIDIRECTIONAL needs one)`);
  }
  if (propagation === 'PROPAGATION_HOST_TO_CONTAINER' && !p.shared && !p.slave) {
    throw failedPrecondition(
      `${field}: host_path "${hostPath}" is mounted on "${p.mountPoint}" but it is not a shared or slave mount (PROPAGATION_HOST_TO_CONTAINER needs one)`,
    );
  }
}

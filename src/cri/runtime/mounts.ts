// CRI mounts → the filesystem/linux isolator's mounts, validated as containerd
// does before anything is created: absolute paths, recursive read-only only
// where it can be done, and the host source's propagation able to carry what
// the mount asks for.
import { isAbsolute } from 'node:path';
import type { Mount__Output } from '../../../api/generated/runtime/v1/Mount.js';
import type { CriMount, IdMap, UserNamespaceConfig } from '../../containerizer/mesos/isolator.js';
import { mapsText, sameMaps } from './userns.js';
import { native } from '../../native/index.js';
import { ownMounts, propagationOf, type MountInfoEntry } from '../../util/mountinfo.js';
import { failedPrecondition, invalidArgument, unimplemented } from '../../errors.js';

let rro: boolean | undefined;

/** Recursive read-only mounts need mount_setattr (Linux 5.12+); advertised in Status only where it works. */
export function recursiveReadOnlySupported(): boolean {
  rro ??= native().hasMountSetattr();
  return rro;
}

/**
 * `userns`: the pod's user namespace, if any. Its mounts are idmapped with it (filesystem/linux);
 * one cannot propagate back to the host, and a mount's own uidMappings/gidMappings are applied
 * only as the namespace's (the idmapping it gets anyway).
 */
export function criMounts(mounts: Mount__Output[], userns?: UserNamespaceConfig): CriMount[] {
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
    if (userns && propagation === 'PROPAGATION_BIDIRECTIONAL') {
      throw invalidArgument(`${field}.propagation PROPAGATION_BIDIRECTIONAL cannot be used in a user namespace: mounts made by the pod's root would reach the host`);
    }
    checkMountMappings(m, field, userns);
    if (propagation !== 'PROPAGATION_PRIVATE') checkSourcePropagation(field, m.host_path, propagation, (table ??= ownMounts()));
    return { field, containerPath: m.container_path, hostPath: m.host_path, readonly: m.readonly, recursiveReadOnly: m.recursive_read_only, propagation };
  });
}

/** A mount's own idmapping: only the pod's user namespace's, which every mount of the pod gets. */
function checkMountMappings(m: Mount__Output, field: string, userns: UserNamespaceConfig | undefined): void {
  if (!m.uidMappings.length && !m.gidMappings.length) return;
  const maps = (list: Mount__Output['uidMappings']): IdMap[] => list.map((x) => ({ containerId: x.container_id, hostId: x.host_id, length: x.length }));
  if (!userns) {
    throw unimplemented(`${field}.uidMappings/gidMappings: idmapped mounts are made only with the pod's user namespace (userns_options mode POD), and this pod has none`);
  }
  if (!sameMaps(maps(m.uidMappings), userns.uids) || !sameMaps(maps(m.gidMappings), userns.gids)) {
    throw unimplemented(
      `${field}.uidMappings/gidMappings: a mapping other than the pod's user namespace's (uids ${mapsText(userns.uids)}, gids ${mapsText(userns.gids)}) is not supported; every mount is idmapped with that one`,
    );
  }
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

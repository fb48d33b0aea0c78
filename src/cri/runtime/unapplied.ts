// Fields cri-mesos accepts but does not apply yet. Refusing them would stop
// ordinary kubelet pods (the kubelet sets several on every pod), and dropping
// them silently would hide it: each is named in one warning per pod or
// container, and listed in the README's known differences.
import type { ContainerConfig__Output } from '../../../api/generated/runtime/v1/ContainerConfig.js';
import type { PodSandboxConfig__Output } from '../../../api/generated/runtime/v1/PodSandboxConfig.js';
import type { SecurityProfile__Output } from '../../../api/generated/runtime/v1/SecurityProfile.js';
import type { UserNamespace__Output } from '../../../api/generated/runtime/v1/UserNamespace.js';
import type { SELinuxOption__Output } from '../../../api/generated/runtime/v1/SELinuxOption.js';

/** A profile other than Unconfined (an absent message means none; a present one defaults to RuntimeDefault). */
const confined = (p: SecurityProfile__Output | null | undefined) => !!p && p.profile_type !== 'Unconfined';
const userNamespace = (u: UserNamespace__Output | null | undefined) => !!u && u.mode !== 'NODE';
const selinux = (o: SELinuxOption__Output | null | undefined) => !!o && !!(o.user || o.role || o.type || o.level);

export function unappliedContainerFields(config: ContainerConfig__Output): string[] {
  const out: string[] = [];
  const sc = config.linux?.security_context;
  if (config.CDI_devices.length) out.push('CDI_devices');
  config.mounts.forEach((m, i) => {
    if (m.selinux_relabel) out.push(`mounts[${i}].selinux_relabel`);
    if (m.uidMappings.length || m.gidMappings.length) out.push(`mounts[${i}].uidMappings/gidMappings`);
    if (m.mount_options.length) out.push(`mounts[${i}].mount_options`);
  });
  if (sc) {
    if (confined(sc.apparmor)) out.push('linux.security_context.apparmor');
    if (sc.apparmor_profile && sc.apparmor_profile !== 'unconfined') out.push('linux.security_context.apparmor_profile');
    if (selinux(sc.selinux_options)) out.push('linux.security_context.selinux_options');
    if (sc.supplemental_groups_policy === 'Strict') out.push('linux.security_context.supplemental_groups_policy');
    if (sc.capabilities?.add_ambient_capabilities.length) out.push('linux.security_context.capabilities.add_ambient_capabilities');
    if (userNamespace(sc.namespace_options?.userns_options)) out.push('linux.security_context.namespace_options.userns_options');
  }
  return out;
}

/** `cniNetwork`: the pod got a CNI network (port_mappings then go to the portmap plugin). */
export function unappliedSandboxFields(config: PodSandboxConfig__Output, cniNetwork: boolean): string[] {
  const out: string[] = [];
  const sc = config.linux?.security_context;
  // A NODE pod's ports are the host's own; a POD pod without a CNI network cannot map any.
  const hostNetwork = sc?.namespace_options?.network === 'NODE';
  if (config.port_mappings.length && !hostNetwork && !cniNetwork) out.push('port_mappings');
  if (config.linux?.overhead) out.push('linux.overhead');
  if (sc) {
    if (confined(sc.apparmor)) out.push('linux.security_context.apparmor');
    if (selinux(sc.selinux_options)) out.push('linux.security_context.selinux_options');
    // The pod's pause helper runs as root with no rootfs of its own.
    if (sc.run_as_user) out.push('linux.security_context.run_as_user');
    if (sc.run_as_group) out.push('linux.security_context.run_as_group');
    if (sc.supplemental_groups.length) out.push('linux.security_context.supplemental_groups');
    if (sc.supplemental_groups_policy === 'Strict') out.push('linux.security_context.supplemental_groups_policy');
    if (userNamespace(sc.namespace_options?.userns_options)) out.push('linux.security_context.namespace_options.userns_options');
  }
  return out;
}

// Fields cri-mesos accepts but does not apply yet. Refusing them would stop
// ordinary kubelet pods (the kubelet sets several on every pod), and dropping
// them silently would hide it: each is named in one warning per pod or
// container, and listed in the README's known differences.
import type { ContainerConfig__Output } from '../../../api/generated/runtime/v1/ContainerConfig.js';
import type { PodSandboxConfig__Output } from '../../../api/generated/runtime/v1/PodSandboxConfig.js';
import type { SELinuxOption__Output } from '../../../api/generated/runtime/v1/SELinuxOption.js';

const selinux = (o: SELinuxOption__Output | null | undefined) => !!o && !!(o.user || o.role || o.type || o.level);

export function unappliedContainerFields(config: ContainerConfig__Output): string[] {
  const out: string[] = [];
  const sc = config.linux?.security_context;
  if (config.CDI_devices.length) out.push('CDI_devices');
  config.mounts.forEach((m, i) => {
    if (m.selinux_relabel) out.push(`mounts[${i}].selinux_relabel`);
    if (m.mount_options.length) out.push(`mounts[${i}].mount_options`);
  });
  if (sc) {
    // AppArmor is applied or refused (src/security/apparmor.ts); user namespaces and the mounts'
    // uidMappings/gidMappings are applied or refused (src/cri/runtime/userns.ts, mounts.ts).
    if (selinux(sc.selinux_options)) out.push('linux.security_context.selinux_options');
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
  // The kubelet always sends overhead, empty when the RuntimeClass has none: only values count.
  const overhead = config.linux?.overhead;
  if (overhead && Object.values(overhead).some(isSet)) out.push('linux.overhead');
  // The pause helper takes run_as_user, run_as_group and supplemental_groups (it has no image
  // /etc/group, so either groups policy is the same); AppArmor the host cannot apply is refused,
  // and where it could the handler adds the field; user namespaces are applied or refused.
  if (sc && selinux(sc.selinux_options)) out.push('linux.security_context.selinux_options');
  return out;
}

/** A proto field with a value other than its default ('', '0', 0, [], {}). */
function isSet(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v && typeof v === 'object') return Object.keys(v).length > 0;
  return v !== '' && v !== '0' && v !== 0 && v !== false && v !== null && v !== undefined;
}

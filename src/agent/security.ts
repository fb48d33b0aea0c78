// Security contexts as the kubelet sends them (pkg/securitycontext, kuberuntime/security_context.go,
// kuberuntime_sandbox.go generatePodSandboxLinuxConfig, kuberuntime_container_linux.go,
// pkg/kubelet/kuberuntime/util NamespacesForPod).
import { join } from 'node:path';
import type { LinuxContainerSecurityContext } from '../../api/generated/runtime/v1/LinuxContainerSecurityContext.js';
import type { LinuxSandboxSecurityContext } from '../../api/generated/runtime/v1/LinuxSandboxSecurityContext.js';
import type { NamespaceOption } from '../../api/generated/runtime/v1/NamespaceOption.js';
import type { SecurityProfile } from '../../api/generated/runtime/v1/SecurityProfile.js';
import type { AppArmorProfile, Container, Pod, SeccompProfile, SecurityContext } from './types.js';
import { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS } from '../security/default-paths.js';


/** NODE for the host's namespaces; PID: POD when the pod shares one, else CONTAINER; user: the host's. */
export function namespacesForPod(pod: Pod): NamespaceOption {
  return {
    network: pod.spec.hostNetwork ? 'NODE' : 'POD',
    ipc: pod.spec.hostIPC ? 'NODE' : 'POD',
    pid: pod.spec.hostPID ? 'NODE' : pod.spec.shareProcessNamespace ? 'POD' : 'CONTAINER',
    userns_options: { mode: 'NODE' },
  };
}

/** The pod's security context with the container's fields over it (DetermineEffectiveSecurityContext). */
export function effectiveSecurityContext(pod: Pod, container: Container): SecurityContext {
  const p = pod.spec.securityContext ?? {};
  const fromPod: SecurityContext = {};
  if (p.seLinuxOptions) fromPod.seLinuxOptions = { ...p.seLinuxOptions };
  if (p.runAsUser !== undefined) fromPod.runAsUser = p.runAsUser;
  if (p.runAsGroup !== undefined) fromPod.runAsGroup = p.runAsGroup;
  if (p.runAsNonRoot !== undefined) fromPod.runAsNonRoot = p.runAsNonRoot;
  const c = container.securityContext ?? {};
  const out: SecurityContext = { ...fromPod };
  for (const [k, v] of Object.entries(c)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

function supplementalGroups(pod: Pod): number[] {
  const sc = pod.spec.securityContext;
  const groups: number[] = [];
  if (sc?.fsGroup !== undefined) groups.push(sc.fsGroup);
  for (const g of sc?.supplementalGroups ?? []) groups.push(g);
  return groups;
}

/** Any container (init ones too) privileged makes the sandbox privileged. */
export function hasPrivilegedContainer(pod: Pod): boolean {
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers].some((c) => c.securityContext?.privileged === true);
}

/** The sandbox's: always RuntimeDefault seccomp (the pause process needs nothing more). */
export function sandboxSecurityContext(pod: Pod): LinuxSandboxSecurityContext {
  const sc = pod.spec.securityContext ?? {};
  const out: LinuxSandboxSecurityContext = {
    privileged: hasPrivilegedContainer(pod),
    seccomp: { profile_type: 'RuntimeDefault' },
    namespace_options: namespacesForPod(pod),
  };
  if (sc.runAsUser !== undefined) out.run_as_user = { value: sc.runAsUser };
  if (sc.runAsGroup !== undefined) out.run_as_group = { value: sc.runAsGroup };
  const groups = supplementalGroups(pod);
  if (groups.length) out.supplemental_groups = groups;
  if (sc.supplementalGroupsPolicy) out.supplemental_groups_policy = sc.supplementalGroupsPolicy === 'Strict' ? 'Strict' : 'Merge';
  if (sc.seLinuxOptions) out.selinux_options = { ...sc.seLinuxOptions };
  return out;
}

/**
 * The container's: capabilities as written, user and group (the image's user when the pod names
 * none), seccomp (Unconfined unless asked: the kubelet's --seccomp-default is off), AppArmor only
 * when asked, no_new_privs from allowPrivilegeEscalation=false, the default masked and read-only
 * /proc paths unless procMount is Unmasked.
 */
export function containerSecurityContext(pod: Pod, container: Container, seccompRoot: string, imageUser: { uid?: number; username?: string }): LinuxContainerSecurityContext {
  const sc = effectiveSecurityContext(pod, container);
  const out: LinuxContainerSecurityContext = {
    privileged: sc.privileged ?? false,
    readonly_rootfs: sc.readOnlyRootFilesystem ?? false,
    namespace_options: namespacesForPod(pod),
    no_new_privs: sc.privileged ? false : sc.allowPrivilegeEscalation === undefined ? false : !sc.allowPrivilegeEscalation,
    masked_paths: sc.procMount === 'Unmasked' ? [] : [...DEFAULT_MASKED_PATHS],
    readonly_paths: sc.procMount === 'Unmasked' ? [] : [...DEFAULT_READONLY_PATHS],
    seccomp: seccompProfile(container.securityContext?.seccompProfile ?? pod.spec.securityContext?.seccompProfile, seccompRoot),
  };
  if (sc.capabilities) out.capabilities = { add_capabilities: sc.capabilities.add ?? [], drop_capabilities: sc.capabilities.drop ?? [] };
  if (sc.seLinuxOptions) out.selinux_options = { ...sc.seLinuxOptions };
  if (sc.runAsUser !== undefined) out.run_as_user = { value: sc.runAsUser };
  else {
    if (imageUser.uid !== undefined) out.run_as_user = { value: imageUser.uid };
    if (imageUser.username) out.run_as_username = imageUser.username;
  }
  if (sc.runAsGroup !== undefined) out.run_as_group = { value: sc.runAsGroup };
  const groups = supplementalGroups(pod);
  if (groups.length) out.supplemental_groups = groups;
  const policy = pod.spec.securityContext?.supplementalGroupsPolicy;
  if (policy) out.supplemental_groups_policy = policy === 'Strict' ? 'Strict' : 'Merge';
  const apparmor = container.securityContext?.appArmorProfile ?? pod.spec.securityContext?.appArmorProfile;
  if (apparmor) {
    out.apparmor = appArmorProfile(apparmor);
    out.apparmor_profile = apparmor.type === 'RuntimeDefault' ? 'runtime/default' : apparmor.type === 'Localhost' ? `localhost/${apparmor.localhostProfile ?? ''}` : 'unconfined';
  }
  return out;
}

/** A Localhost profile is a file under the agent's seccomp dir (the kubelet's <root>/seccomp). */
export function seccompProfile(p: SeccompProfile | undefined, seccompRoot: string): SecurityProfile {
  if (!p || p.type === 'Unconfined') return { profile_type: 'Unconfined' };
  if (p.type === 'RuntimeDefault') return { profile_type: 'RuntimeDefault' };
  return { profile_type: 'Localhost', localhost_ref: join(seccompRoot, p.localhostProfile ?? '') };
}

function appArmorProfile(p: AppArmorProfile): SecurityProfile {
  if (p.type === 'Localhost') return { profile_type: 'Localhost', localhost_ref: p.localhostProfile ?? '' };
  return { profile_type: p.type === 'RuntimeDefault' ? 'RuntimeDefault' : 'Unconfined' };
}

/** "net/ipv4/ip_forward" → "net.ipv4.ip_forward" (utilsysctl.NormalizeName). */
export function normalizeSysctlName(name: string): string {
  const first = name.search(/[./]/);
  if (first === -1 || name[first] === '.') return name;
  return name.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
}

/** runAsNonRoot: the effective user must be a non-zero uid (verifyRunAsNonRoot). */
export function verifyRunAsNonRoot(pod: Pod, container: Container, imageUser: { uid?: number; username?: string }): string | undefined {
  const sc = effectiveSecurityContext(pod, container);
  if (!sc.runAsNonRoot) return undefined;
  if (sc.runAsUser !== undefined) return sc.runAsUser === 0 ? `container's runAsUser breaks non-root policy (pod: "${pod.metadata.name}", container: ${container.name})` : undefined;
  if (imageUser.uid === 0 || (imageUser.uid === undefined && !imageUser.username)) return 'container has runAsNonRoot and image will run as root';
  if (imageUser.uid === undefined) return `container has runAsNonRoot and image has non-numeric user (${imageUser.username}), cannot verify user is non-root`;
  return undefined;
}

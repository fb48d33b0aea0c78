// Which AppArmor profile a container gets, with containerd's rules (1.7, `generateApparmorSpecOpts`):
//
// - The `apparmor` message decides (its zero value is RuntimeDefault); else the deprecated
//   `apparmor_profile` ("runtime/default", "unconfined", "localhost/<name>"); neither means none.
// - On a host without AppArmor, any profile but Unconfined is refused: the container would run
//   unconfined while its owner asked for confinement. containerd refuses RuntimeDefault there too
//   ("apparmor is not supported"); so do we, never silently unconfined.
// - With AppArmor: Unconfined and none run unconfined (containerd loads and applies its own
//   default for none; cri-mesos has no default profile yet); RuntimeDefault is the profile
//   `cri-mesos-default`, which an administrator must have loaded (privileged containers stay
//   unconfined, as with containerd); Localhost is a loaded profile by name. The launch helper
//   applies it (plan op `apparmor`) by writing "exec <profile>" to the command's
//   /proc/thread-self/attr, so it takes effect at the command's execve.
import { readFileSync } from 'node:fs';
import { failedPrecondition, invalidArgument, notFound } from '../errors.js';
import type { SecurityProfile__Output } from '../../api/generated/runtime/v1/SecurityProfile.js';

export type AppArmorChoice = { kind: 'none' } | { kind: 'unconfined' } | { kind: 'runtime-default' } | { kind: 'localhost'; profile: string };

export interface AppArmorRequest {
  apparmor?: SecurityProfile__Output | null;
  /** Containers only (deprecated). */
  apparmor_profile?: string;
}

/** The profile named by RuntimeDefault on a host with AppArmor. */
export const DEFAULT_PROFILE = 'cri-mesos-default';

/** The kernel's switch: "Y" when AppArmor is enabled. */
const ENABLED_FILE = '/sys/module/apparmor/parameters/enabled';
/** Loaded profiles, one "name (mode)" a line (securityfs). */
const PROFILES_FILE = '/sys/kernel/security/apparmor/profiles';

export interface AppArmorHost {
  enabled: boolean;
  /** Whether a profile of that name is loaded; undefined when it cannot be told (the helper's write then decides). */
  loaded(name: string): boolean | undefined;
}

/** This host, read from the kernel (each call: the profile list changes as profiles are loaded). */
export function thisHost(): AppArmorHost {
  let enabled = false;
  try {
    enabled = readFileSync(ENABLED_FILE, 'utf8').trim() === 'Y';
  } catch {
    // no AppArmor module: disabled
  }
  return {
    enabled,
    loaded(name) {
      let text: string;
      try {
        text = readFileSync(PROFILES_FILE, 'utf8');
      } catch {
        return undefined;
      }
      return text.split('\n').some((line) => line.replace(/ \([^)]*\)$/, '') === name);
    },
  };
}

export function chooseAppArmor(sc: AppArmorRequest | null | undefined, field: string): AppArmorChoice {
  const p = sc?.apparmor;
  if (p) {
    const type = (p.profile_type as unknown) === 0 ? 'RuntimeDefault' : p.profile_type;
    if (type !== 'Localhost' && p.localhost_ref) {
      throw invalidArgument(`${field}.apparmor.localhost_ref: only for a Localhost profile (profile_type is ${String(type)})`);
    }
    if (type === 'Unconfined') return { kind: 'unconfined' };
    if (type === 'RuntimeDefault') return { kind: 'runtime-default' };
    if (type === 'Localhost') {
      if (!p.localhost_ref) throw invalidArgument(`${field}.apparmor.localhost_ref: empty for a Localhost profile`);
      checkName(p.localhost_ref, `${field}.apparmor.localhost_ref`);
      return { kind: 'localhost', profile: p.localhost_ref };
    }
    throw invalidArgument(`${field}.apparmor.profile_type: unknown type ${String(p.profile_type)}`);
  }
  const path = sc?.apparmor_profile ?? '';
  if (path === '') return { kind: 'none' };
  if (path === 'unconfined') return { kind: 'unconfined' };
  if (path === 'runtime/default') return { kind: 'runtime-default' };
  if (path.startsWith('localhost/') && path.length > 'localhost/'.length) {
    const profile = path.slice('localhost/'.length);
    checkName(profile, `${field}.apparmor_profile`);
    return { kind: 'localhost', profile };
  }
  throw invalidArgument(`${field}.apparmor_profile: unknown profile "${path}" (runtime/default, unconfined or localhost/<name>)`);
}

/** The kernel takes the name after "exec " up to the end of the write: no line breaks or NULs. */
function checkName(name: string, field: string): void {
  if (/[\0\n]/.test(name)) throw invalidArgument(`${field}: the profile name contains a NUL or a newline`);
}

function describe(choice: AppArmorChoice, sc: AppArmorRequest | null | undefined, field: string): string {
  const which = sc?.apparmor ? `${field}.apparmor` : `${field}.apparmor_profile`;
  return choice.kind === 'localhost' ? `${which} (Localhost "${choice.profile}")` : `${which} (RuntimeDefault)`;
}

/**
 * The profile the launch helper applies, or undefined for none. Throws FAILED_PRECONDITION naming
 * the field when the host cannot confine as asked, NOT_FOUND for a profile that is not loaded.
 */
export function appArmorProfile(
  sc: (AppArmorRequest & { privileged?: boolean }) | null | undefined,
  host: AppArmorHost,
  field: string,
): string | undefined {
  const choice = chooseAppArmor(sc, field);
  if (choice.kind === 'none' || choice.kind === 'unconfined') return undefined;
  if (!host.enabled) {
    throw failedPrecondition(
      `${describe(choice, sc, field)}: AppArmor is not enabled on this host (${ENABLED_FILE}), so the profile cannot be applied; ask for Unconfined or leave it unset`,
    );
  }
  if (choice.kind === 'runtime-default' && sc?.privileged) return undefined;
  const profile = choice.kind === 'localhost' ? choice.profile : DEFAULT_PROFILE;
  if (host.loaded(profile) === false) {
    throw notFound(`${describe(choice, sc, field)}: AppArmor profile "${profile}" is not loaded on this host (${PROFILES_FILE})`);
  }
  return profile;
}

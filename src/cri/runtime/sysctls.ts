// A pod's sysctls are written by its launch helper inside the pod's namespaces, so only those
// that belong to a namespace the pod has of its own can be applied; anything else would change
// the node. The rules are runc's (libcontainer/configs/validate): IPC ones need the pod's own
// IPC namespace, net.* its own network namespace, kernel.domainname its own UTS namespace
// (which a pod has exactly when its network is POD); everything else is refused.
import { invalidArgument } from '../../errors.js';

/** Sysctls of the IPC namespace (runc's list), and fs.mqueue.* below. */
const IPC_SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

export function checkSysctls(sysctls: Record<string, string> | undefined, modes: { network: 'POD' | 'NODE'; ipc: 'POD' | 'NODE' }): void {
  for (const [raw, value] of Object.entries(sysctls ?? {})) {
    const field = `config.linux.sysctls["${raw}"]`;
    // "net/ipv4/conf/eth0.100/forwarding" is the slash form (dots in a name); the first parts decide.
    const key = raw.includes('/') ? raw.replaceAll('/', '.') : raw;
    if (!key || key.split('.').some((p) => p === '' || p === '..') || /[\0\s]/.test(raw)) throw invalidArgument(`${field}: not a sysctl name`);
    if (value.includes('\0')) throw invalidArgument(`${field}: the value contains NUL`);
    if (IPC_SYSCTLS.has(key) || key.startsWith('fs.mqueue.')) {
      if (modes.ipc === 'NODE') throw invalidArgument(`${field}: an IPC namespace sysctl, and the pod shares the node's IPC namespace (namespace_options.ipc NODE)`);
    } else if (key.startsWith('net.')) {
      if (modes.network === 'NODE') throw invalidArgument(`${field}: a network namespace sysctl, and the pod shares the node's network namespace (namespace_options.network NODE)`);
    } else if (key === 'kernel.domainname') {
      if (modes.network === 'NODE') throw invalidArgument(`${field}: a UTS namespace sysctl, and the pod shares the node's UTS namespace (namespace_options.network NODE)`);
    } else if (key === 'kernel.hostname') {
      throw invalidArgument(`${field}: set config.hostname instead`);
    } else {
      throw invalidArgument(`${field}: not a namespaced sysctl (only net.*, kernel.domainname and the IPC ones kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.* are per pod)`);
    }
  }
}

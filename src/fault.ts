// Test hooks, off unless the daemon's environment turns them on; each costs one
// comparison otherwise.
//
// Fault injection for the crash tests: with CRI_MESOS_FAULT=<point> (or
// <point>@<n>) the daemon kills itself with SIGKILL when it reaches that point,
// as a power cut or an OOM kill would. Every point is listed here, once; the
// fault-injection test walks all of them and fails on one it does not cover.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const FAULT_POINTS = [
  // CRI records (work dir)
  'record-write:before',
  'record-write:after',
  'record-delete:before',
  'record-delete:after',
  // the containerizer's checkpoint (runtime dir), before anything of a container exists
  'checkpoint-write:before',
  'checkpoint-write:after',
  // a container's rootfs
  'rootfs-mount:before',
  'rootfs-mount:after',
  // cgroups (isolator prepare)
  'cgroups-create:before',
  'cgroups-create:after',
  // network/cni: the ADD (after the netns is pinned and the network checkpointed), and the DEL
  'cni-add:before',
  'cni-add:after',
  'cni-del:before',
  'cni-del:after',
  // the launch helper: cloned and held, then released
  'spawn:before',
  'spawn:after',
  'release:before',
  'release:after',
  // a pod given a pooled pause helper (launcher/pod-pool.ts): taken, then moved into the pod's
  // cgroups and its pid recorded, before its plan is written
  'pool-handover:before',
  'pool-handover:after',
  // StartContainer
  'start-byte:before',
  'start-byte:after',
  // destroy: kill everything, then isolator cleanup
  'destroy-kill:before',
  'destroy-kill:after',
  'destroy-cleanup:before',
  'destroy-cleanup:after',
  // remove: rootfs, then the runtime dir (renamed into removed/, deleted after the answer)
  'remove-rootfs:before',
  'remove-rootfs:renamed',
  'remove-rootfs:after',
  'remove-rundir:before',
  'remove-rundir:renamed',
  'remove-rundir:after',
] as const;

export type FaultPoint = (typeof FAULT_POINTS)[number];

// "<point>" kills at its first hit, "<point>@<n>" at its n-th.
const [armed, nth] = (process.env.CRI_MESOS_FAULT ?? '').split('@');
let hits = 0;

export function faultPoint(point: FaultPoint): void {
  if (!armed || armed !== point || ++hits < Number(nth ?? 1)) return;
  process.stderr.write(`cri-mesos: fault injection: SIGKILL at ${point} (hit ${hits})\n`);
  process.kill(process.pid, 'SIGKILL');
}

/**
 * Test-only, off unless the daemon's environment sets
 * CRI_MESOS_TEST_HOLD_CREATE=DIR: a create of the container named N, while
 * DIR/N.hold exists, stops once its rootfs is mounted, writes DIR/N.held and
 * goes on when N.hold is gone. Lets a test act while a create is in flight
 * (test/integration/image-leases.test.ts) without timing guesses.
 */
export function holdCreate(name: string): Promise<void> {
  return holdWhile(`${name}.hold`, `${name}.held`);
}

/**
 * Test-only, as holdCreate but with DIR/N.launch-hold: the launch of the container named N, after
 * CreateContainer answered, waits before its helper is forked (writes DIR/N.launch-held). Lets a
 * test crash the daemon or call StartContainer in that window.
 */
export function holdLaunch(name: string): Promise<void> {
  return holdWhile(`${name}.launch-hold`, `${name}.launch-held`);
}

/** In CRI_MESOS_TEST_HOLD_CREATE's dir: while `hold` exists, `held` says so and this waits. */
async function holdWhile(hold: string, held: string): Promise<void> {
  const dir = process.env.CRI_MESOS_TEST_HOLD_CREATE;
  if (!dir || !existsSync(join(dir, hold))) return;
  writeFileSync(join(dir, held), '');
  while (existsSync(join(dir, hold))) await sleep(20);
}

/**
 * Test-only, off unless the daemon's environment sets CRI_MESOS_TEST_HOLD_RECOVERY=FILE: the
 * end of recovery (the gate every request waits behind) waits while FILE exists. Lets a test
 * see the daemon bound to its socket but not yet serving (test/integration/systemd-notify.test.ts).
 */
export async function holdRecovery(): Promise<void> {
  const file = process.env.CRI_MESOS_TEST_HOLD_RECOVERY;
  if (!file) return;
  while (existsSync(file)) await sleep(20);
}

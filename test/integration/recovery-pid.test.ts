// Recovery trusts a recorded init pid only while that very process runs: not
// a reused pid, not a zombie its new parent has not reaped yet.
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { native } from '../../src/native/index.js';
import { attach, processStartTime } from '../../src/containerizer/mesos/containerizer.js';

/** attach() as a pid (its pidfd closed again), or what it said instead. */
function attached(dir: string): number | string {
  const r = attach(dir);
  if (typeof r === 'string') return r;
  native().close(r.pidfd);
  return r.pid;
}

test('a live init is recovered; a zombie, a reused pid or a missing file is not; garbage is an error, not "exited"', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cri-mesos-test-pid-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const held = await native().spawnHeld({ file: '/bin/sleep', argv: ['sleep', '30'], env: [], cloneNamespaces: [], joinNamespaces: [], stdio: [-1, -1, -1] });
  const child = await native().release(held);
  let open = true;
  t.teardown(async () => {
    if (!open) return;
    native().pidfdSendSignal(child.pidfd, 9);
    await native().waitPidfd(child.pidfd);
    native().close(child.pidfd);
  });
  const record = (pid: number, start: string) => {
    writeFileSync(join(dir, 'pid'), `${pid}\n`);
    writeFileSync(join(dir, 'pid.start'), `${start}\n`);
  };
  record(child.pid, processStartTime(child.pid)!);
  t.is(attached(dir), child.pid);
  record(child.pid, '1');
  t.is(attached(dir), 'gone', 'same pid, other start time: reused');
  record(child.pid, processStartTime(child.pid)!);
  native().pidfdSendSignal(child.pidfd, 9);
  // Not reaped yet: a zombie with the same pid and start time.
  for (let i = 0; i < 100 && !/\) Z /.test(readFileSync(`/proc/${child.pid}/stat`, 'utf8')); i++) await sleep(10);
  t.regex(readFileSync(`/proc/${child.pid}/stat`, 'utf8'), /\) Z /);
  t.is(attached(dir), 'gone', 'a zombie has exited');
  await native().waitPidfd(child.pidfd);
  native().close(child.pidfd);
  open = false;
  t.is(attached(dir), 'gone', 'reaped: ESRCH');
  writeFileSync(join(dir, 'pid'), 'garbage\n');
  t.throws(() => attach(dir), { message: /not a pid/ });
  rmSync(join(dir, 'pid'));
  t.is(attached(dir), 'never launched');
});

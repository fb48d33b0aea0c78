// ava hooks shared by the socket-level test files (kept apart from daemon.ts,
// which scripts outside ava such as the benchmark also import).
import test from 'ava';
import { TestDaemon, isRoot, type DaemonOptions } from './daemon.js';

/**
 * The hooks every socket-level test file needs: one daemon for the file, its
 * log shown when a test fails, teardown afterwards. Not root: one loud skip
 * and undefined, so the file's tests are not registered.
 */
export function useDaemon(what: string, opts: DaemonOptions = {}): TestDaemon | undefined {
  if (!isRoot()) {
    test(`${what} need root`, (t) => {
      t.log('SKIPPED: not root');
      t.pass();
    });
    return undefined;
  }
  const d = new TestDaemon();
  test.serial.before(async () => {
    await d.init(opts);
  });
  test.afterEach.always((t) => {
    if (!t.passed) t.log(d.logs().split('\n').slice(-40).join('\n'));
  });
  test.after.always(async () => {
    await d.teardown();
  });
  return d;
}


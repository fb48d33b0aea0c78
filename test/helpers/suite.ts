// ava hooks shared by the socket-level test files (kept apart from daemon.ts,
// which scripts outside ava such as the benchmark also import).
import test, { type ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBusyboxImages, type BuiltTestImages } from '../../hack/build-test-images.js';
import { TestDaemon, isRoot, type DaemonOptions } from './daemon.js';

/**
 * The hooks every socket-level test file needs: one daemon for the file, its
 * log shown when a test fails, teardown afterwards. Not root: one loud skip
 * and undefined, so the file's tests are not registered.
 */
export function useDaemon(what: string, opts: DaemonOptions = {}): TestDaemon | undefined {
  if (!isRoot()) {
    // Counted as skipped, never as passed.
    test.skip(`${what} need root`, () => {});
    return undefined;
  }
  const d = new TestDaemon({ ...(opts.cni ? { cni: true } : {}) });
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


/** Builds the busybox test images into a temp dir for this test file and removes them afterwards. */
export function useTestImages(set: (images: BuiltTestImages) => void): void {
  let dir: string | undefined;
  test.before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cm-images-'));
    set(await buildBusyboxImages(join(dir, 'built')));
  });
  test.after.always(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });
}

/** A temp dir that is removed when the test ends, also on failure. */
export async function tempDir(t: ExecutionContext, prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

// Operations on one cgroup directory (absolute path), v1 or v2. The kind is told apart by the
// files the kernel shows: v1 freezer has freezer.state, cgroup2 has cgroup.freeze / cgroup.kill.
//
// cgroupfs lives in memory: a mkdir, read or write of a control file takes 10-60 µs in the
// calling thread, while each await on fs/promises is a round trip through libuv's thread pool
// (0.1-0.5 ms when the daemon is busy). A pod's cgroups took about 60 of them, in sequence, so
// these calls are synchronous. A write to cgroup.procs can wait for an RCU grace period:
// writeProcs moves those to the thread pool once they prove slow here.
import { accessSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parsePids } from './convert.js';
import { closeStatFiles } from './stats.js';

export class CgroupError extends Error {
  constructor(
    message: string,
    readonly path: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'CgroupError';
  }
}

function errCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | undefined)?.code;
}

function exists(p: string): boolean {
  try {
    accessSync(p);
    return true;
  } catch {
    return false;
  }
}

export async function readCgroupFile(dir: string, file: string): Promise<string> {
  return readFileSync(join(dir, file), 'utf8');
}

/** Like readCgroupFile, but a missing file (controller not there) is undefined. */
export async function readCgroupFileOpt(dir: string, file: string): Promise<string | undefined> {
  try {
    return readFileSync(join(dir, file), 'utf8');
  } catch (e) {
    if (errCode(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/** Write one value; the kernel's errno (EBUSY, EINVAL, ...) is kept in `.code` and named in the message. */
export async function writeCgroupFile(dir: string, file: string, value: string | number): Promise<void> {
  const p = join(dir, file);
  try {
    if (file === 'cgroup.procs') await writeProcs(p, String(value));
    else writeFileSync(p, String(value));
  } catch (e) {
    const code = errCode(e);
    throw new CgroupError(`write ${JSON.stringify(String(value))} to ${p}: ${code ?? String(e)}`, p, code);
  }
}

/**
 * mkdir -p `rel` under `mountPoint`. With `cpuset`, each level whose cpuset.cpus/mems is empty gets
 * the parent's values (v1 children start empty and refuse tasks until both are set).
 */
export async function createCgroup(mountPoint: string, rel: string, opts: { cpuset?: boolean } = {}): Promise<string> {
  let cur = mountPoint;
  for (const part of rel.split('/').filter(Boolean)) {
    const parent = cur;
    cur = join(cur, part);
    try {
      mkdirSync(cur);
    } catch (e) {
      if (errCode(e) !== 'EEXIST') throw e;
    }
    if (opts.cpuset) {
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        if ((await readCgroupFile(cur, f)).trim() === '') {
          await writeCgroupFile(cur, f, (await readCgroupFile(parent, f)).trim());
        }
      }
    }
  }
  return cur;
}

/**
 * A cgroup.procs write takes 40-300 µs on this kernel (6.18), but waits for an RCU grace
 * period (5-25 ms) on kernels where the threadgroup rwsem is not percpu-read-biased and
 * favordynmods is off. Written in the calling thread (a launch places its helper in 6-8
 * hierarchies: 1-2 ms of pool round trips saved) until SLOW_PROCS_WRITES writes took over
 * SLOW_PROCS_WRITE_MS each; from then on, on the thread pool, off the event loop.
 */
const SLOW_PROCS_WRITE_MS = 2;
const SLOW_PROCS_WRITES = 3;
let slowProcsWrites = 0;

async function writeProcs(path: string, value: string): Promise<void> {
  if (slowProcsWrites >= SLOW_PROCS_WRITES) return writeFile(path, value);
  const t0 = performance.now();
  writeFileSync(path, value);
  if (performance.now() - t0 > SLOW_PROCS_WRITE_MS) slowProcsWrites++;
}

export async function addProcess(dir: string, pid: number): Promise<void> {
  await writeCgroupFile(dir, 'cgroup.procs', pid);
}

export async function childCgroups(dir: string): Promise<string[]> {
  const entries = readdirSync(dir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
}

/** PIDs in cgroup.procs (and in every descendant with `recursive`). A missing cgroup has none. */
export async function listProcesses(dir: string, recursive = false): Promise<number[]> {
  const text = await readCgroupFileOpt(dir, 'cgroup.procs');
  if (text === undefined) return [];
  const pids = parsePids(text);
  if (recursive) {
    let kids: string[] = [];
    try {
      kids = await childCgroups(dir);
    } catch (e) {
      if (errCode(e) !== 'ENOENT') throw e;
    }
    for (const k of kids) pids.push(...(await listProcesses(k, true)));
  }
  return pids;
}

export type FreezerKind = 'v1' | 'v2';

export async function freezerKind(dir: string): Promise<FreezerKind | undefined> {
  if (exists(join(dir, 'cgroup.freeze'))) return 'v2';
  if (exists(join(dir, 'freezer.state'))) return 'v1';
  return undefined;
}

/**
 * Freeze and wait until the kernel reports it frozen. Returns false on timeout (v1 can sit in
 * FREEZING, e.g. with a task in uninterruptible sleep); rewriting FROZEN re-triggers the attempt.
 */
export async function freeze(dir: string, timeoutMs = 1000): Promise<boolean> {
  const kind = await freezerKind(dir);
  if (!kind) throw new CgroupError(`${dir} has no freezer`, dir, 'ENOTSUP');
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    if (kind === 'v1') {
      await writeCgroupFile(dir, 'freezer.state', 'FROZEN');
      if ((await readCgroupFile(dir, 'freezer.state')).trim() === 'FROZEN') return true;
    } else {
      await writeCgroupFile(dir, 'cgroup.freeze', '1');
      const ev = await readCgroupFile(dir, 'cgroup.events');
      if (/^frozen 1$/m.test(ev)) return true;
    }
    if (Date.now() >= deadline) return false;
    await sleep(pollDelay(attempt));
  }
}

/**
 * Waits between polls of a freeze or an emptying cgroup: 1, 2, 4, 8 ms, then 10. A v1 freeze
 * usually reads FREEZING once, and SIGKILLed tasks are gone within a ms or two: flat 10 ms
 * waits were two thirds of a StopContainer (DESTROYING→TERMINATED p50 22-29 ms).
 */
function pollDelay(attempt: number): number {
  return Math.min(10, 2 ** attempt);
}

/**
 * Thaw and wait until the kernel reports it thawed; false on timeout. v1 thaws in the write;
 * cgroup2 reports "frozen 0" once its tasks have been woken, which can come a moment later.
 */
export async function thaw(dir: string, timeoutMs = 1000): Promise<boolean> {
  const kind = await freezerKind(dir);
  if (!kind) throw new CgroupError(`${dir} has no freezer`, dir, 'ENOTSUP');
  if (kind === 'v1') await writeCgroupFile(dir, 'freezer.state', 'THAWED');
  else await writeCgroupFile(dir, 'cgroup.freeze', '0');
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    const thawed =
      kind === 'v1' ? (await readCgroupFile(dir, 'freezer.state')).trim() === 'THAWED' : /^frozen 0$/m.test(await readCgroupFile(dir, 'cgroup.events'));
    if (thawed) return true;
    if (Date.now() >= deadline) return false;
    await sleep(pollDelay(attempt));
  }
}

async function waitEmpty(dir: string, untilMs: number): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    if ((await listProcesses(dir, true)).length === 0) return true;
    if (Date.now() >= untilMs) return false;
    await sleep(pollDelay(attempt));
  }
}

function sigkill(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (e) {
      if (errCode(e) !== 'ESRCH') throw e;
    }
  }
}

export interface KillOptions {
  /** Give up (throw) when processes remain after this long. Default 5 s. */
  timeoutMs?: number;
}

/**
 * Kill every process in the cgroup and its descendants, and wait until they are gone.
 * cgroup2: write 1 to cgroup.kill (race-free against forks). v1 freezer (Mesos' TasksKiller):
 * freeze so nothing can fork, SIGKILL every pid, thaw so the signals are delivered, repeat until empty.
 * A cgroup without a freezer is killed by repeated SIGKILL of its pids. A missing cgroup is fine.
 */
export async function killAll(dir: string, opts: KillOptions = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 5000);
  if (!exists(dir)) return;
  const kind = await freezerKind(dir);
  if (kind === 'v2' && exists(join(dir, 'cgroup.kill'))) {
    await writeCgroupFile(dir, 'cgroup.kill', '1');
    if (await waitEmpty(dir, deadline)) return;
  } else {
    for (;;) {
      // A freeze timeout is not fatal: kill + thaw + retry is Mesos' workaround for stuck FREEZING.
      if (kind === 'v1') await freeze(dir, Math.min(1000, Math.max(0, deadline - Date.now())));
      sigkill(await listProcesses(dir, true));
      if (kind === 'v1') await thaw(dir);
      if (await waitEmpty(dir, Math.min(deadline, Date.now() + 200))) return;
      if (Date.now() >= deadline) break;
    }
  }
  const left = await listProcesses(dir, true);
  throw new CgroupError(`processes still alive in ${dir} after kill: ${left.join(',')}`, dir, 'ETIMEDOUT');
}

export interface RemoveOptions {
  /** rmdir attempts per cgroup while it is EBUSY (default 500, backing off to 10 ms apart ≈ 5 s). */
  retries?: number;
  intervalMs?: number;
}

/** rmdir the cgroup and its descendants bottom-up, retrying EBUSY; a missing cgroup is fine. */
export async function removeCgroup(dir: string, opts: RemoveOptions = {}): Promise<void> {
  const retries = opts.retries ?? 500;
  const interval = opts.intervalMs ?? 10;
  let kids: string[];
  try {
    kids = await childCgroups(dir);
  } catch (e) {
    if (errCode(e) === 'ENOENT') return;
    throw e;
  }
  for (const k of kids) await removeCgroup(k, opts);
  closeStatFiles(dir);
  for (let attempt = 0; ; attempt++) {
    try {
      rmdirSync(dir);
      return;
    } catch (e) {
      const code = errCode(e);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || attempt >= retries) {
        throw new CgroupError(`rmdir ${dir}: ${code ?? String(e)}`, dir, code);
      }
      // A cgroup2 dir stays EBUSY for a moment after its last process is reaped: start with
      // short waits (1, 2, 4 ms ...) rather than a whole interval.
      await sleep(Math.min(interval, 2 ** attempt));
    }
  }
}

// What running a short program costs the daemon: node:child_process (libuv forks) against the
// addon's spawn (src/native/run-program.ts, CLONE_VM|CLONE_VFORK), in one Node process made about
// as big as a daemon with 100 pods (--heap-mb of live objects). For each way, alternating, -n
// runs of `--program` (default /bin/true): the call's latency, then the time and page faults
// of writing the heap once more afterwards (what a fork leaves the parent: write-protected
// pages). See README.md, "Page faults".
//
//   tsx hack/bench/spawn-cost.ts [-n 20] [--heap-mb 40] [--program /bin/true]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { runProgram } from '../../src/native/run-program.js';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : dflt;
};
const N = Number(opt('-n', '20'));
const HEAP_MB = Number(opt('--heap-mb', '40'));
const PROGRAM = opt('--program', '/bin/true');

// Live objects spread over the V8 heap, as a daemon's records and caches are.
const live: { i: number; s: string }[] = [];
while (process.memoryUsage().heapUsed < HEAP_MB * 1024 * 1024) live.push({ i: live.length, s: `object ${live.length}` });
const writeHeap = () => {
  for (const o of live) o.i++;
};
const minflt = () => Number(readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ')[7]);

function viaChildProcess(): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(PROGRAM, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    c.on('error', reject);
    c.stdin.on('error', () => undefined);
    c.on('close', () => resolve());
    c.stdin.end('{}');
  });
}
async function viaAddon(): Promise<void> {
  await runProgram(PROGRAM, { env: {}, input: '{}', timeoutMs: 10_000 });
}

const ways = { 'node:child_process': viaChildProcess, 'addon (CLONE_VM|CLONE_VFORK)': viaAddon };
const rows = new Map<string, { call: number[]; write: number[]; faults: number[] }>();
writeHeap();
for (let i = 0; i < N + 2; i++) {
  for (const [name, run] of i % 2 ? Object.entries(ways).reverse() : Object.entries(ways)) {
    writeHeap();
    const t0 = performance.now();
    await run();
    const t1 = performance.now();
    const f0 = minflt();
    writeHeap();
    const t2 = performance.now();
    if (i < 2) continue; // warm-up
    const r = rows.get(name) ?? { call: [], write: [], faults: [] };
    r.call.push(t1 - t0);
    r.write.push(t2 - t1);
    r.faults.push(minflt() - f0);
    rows.set(name, r);
  }
}
const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
console.log(`${PROGRAM}, n=${N}, this process ${rss.toFixed(0)} MB RSS, ${live.length} live objects; p50:`);
for (const [name, r] of rows) {
  console.log(`  ${name.padEnd(30)} call ${p50(r.call).toFixed(2)} ms; writing the objects again after it ${p50(r.write).toFixed(2)} ms, ${p50(r.faults)} page faults`);
}
const idle = [];
for (let i = 0; i < N; i++) {
  const t0 = performance.now();
  writeHeap();
  idle.push(performance.now() - t0);
}
console.log(`  (writing the objects with no program run before: ${p50(idle).toFixed(2)} ms)`);

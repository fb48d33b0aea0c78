// The daemon's own breakdown of its slow calls, from a log at --log-level debug: the median ms of
// every step of RunPodSandbox and CreateContainer ("rpc steps"), of the launches under them
// ("launch steps", pods and containers apart), of destroys ("destroy steps") and of removes
// ("remove steps"). See README.md, "Where the time goes".
//
//   npm run bench -- -n 30 --workloads pod,container --log-level debug
//   npx tsx hack/bench/steps.ts bench-out/daemon-A.log
import { readFileSync } from 'node:fs';

const KINDS = ['rpc steps', 'launch steps', 'destroy steps', 'remove steps'];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

/** Groups of step records per kind: RPC name, or pod / container for the containerizer's. */
export function stepGroups(log: string): Map<string, Record<string, number>[]> {
  const groups = new Map<string, Record<string, number>[]>();
  for (const line of log.split('\n')) {
    const kind = KINDS.find((k) => line.includes(`msg="${k}"`));
    if (!kind) continue;
    const ms = /ms=(\{[^}]*\})/.exec(line)?.[1];
    if (!ms) continue;
    const rpc = /rpc=(\w+)/.exec(line)?.[1];
    const container = /container=(\S+)/.exec(line)?.[1] ?? '';
    const who = rpc ?? (container.includes('.') ? 'container' : 'pod');
    const key = `${kind}: ${who}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(JSON.parse(ms) as Record<string, number>);
  }
  return groups;
}

function main(): void {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: tsx hack/bench/steps.ts <daemon log at --log-level debug>\n');
    process.exit(2);
  }
  for (const [key, records] of stepGroups(readFileSync(file, 'utf8'))) {
    const names = [...new Set(records.flatMap((r) => Object.keys(r)))];
    let sum = 0;
    console.log(`${key} (n=${records.length}), median ms per step`);
    for (const name of names) {
      const m = median(records.map((r) => r[name] ?? 0));
      sum += m;
      console.log(`  ${name.padEnd(28)} ${m.toFixed(2).padStart(7)}`);
    }
    console.log(`  ${'sum of the medians'.padEnd(28)} ${sum.toFixed(2).padStart(7)}`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main();

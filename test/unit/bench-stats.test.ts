// hack/bench: statistics (hack/bench/stats.ts) and report rendering (hack/bench/report.ts).
import { stepGroups } from '../../hack/bench/steps.js';
import test, { type ExecutionContext } from 'ava';
import {
  cpuSecondsFromStat,
  interleaveOrder,
  logTime,
  logfmtFields,
  percentile,
  phasesFromLog,
  quantileSorted,
  ratio,
  rounds,
  rpcTimesFromLog,
  summarize,
  summarizePhases,
  throughput,
} from '../../hack/bench/stats.js';
import { buildReport, escapeXml, fmtMs, renderSvg, renderTable, tickLabel, type RawResults } from '../../hack/bench/report.js';
import { fdKind, leaked, type Leftovers } from '../helpers/leaks.js';

const oneToHundred = Array.from({ length: 100 }, (_, i) => i + 1);

test('percentiles interpolate linearly between closest ranks (numpy default)', (t) => {
  t.is(percentile([1, 2, 3, 4], 50), 2.5);
  t.is(percentile([4, 1, 3, 2], 50), 2.5, 'input order does not matter');
  t.is(percentile([1, 2, 3, 4, 5], 50), 3);
  t.is(percentile([10, 20, 30, 40, 50], 25), 20);
  t.is(percentile([7], 99), 7);
  t.is(percentile(oneToHundred, 0), 1);
  t.is(percentile(oneToHundred, 100), 100);
  t.true(Math.abs(percentile(oneToHundred, 95) - 95.05) < 1e-9);
  t.true(Math.abs(percentile(oneToHundred, 99) - 99.01) < 1e-9);
  t.true(Number.isNaN(quantileSorted([], 0.5)));
  t.throws(() => quantileSorted([1, 2], 1.5), { instanceOf: RangeError });
});

test('summarize gives n, min, quartiles, p95, p99, max, mean; nothing for no samples', (t) => {
  const s = summarize([...oneToHundred].reverse())!;
  t.is(s.n, 100);
  t.is(s.min, 1);
  t.is(s.max, 100);
  t.is(s.p50, 50.5);
  t.is(s.p25, 25.75);
  t.is(s.p75, 75.25);
  t.is(s.mean, 50.5);
  t.true(Math.abs(s.p99 - 99.01) < 1e-9);
  t.is(summarize([]), undefined);
});

test('ratio is B/A and undefined when a side is missing or A is 0', (t) => {
  t.is(ratio(2, 5), 2.5);
  t.is(ratio(4, 1), 0.25);
  t.is(ratio(undefined, 1), undefined);
  t.is(ratio(1, undefined), undefined);
  t.is(ratio(0, 1), undefined);
  t.is(ratio(NaN, 1), undefined);
});

test('throughput, rounds and the A/B interleaving order', (t) => {
  t.is(throughput(100, 2000), 50);
  t.true(Number.isNaN(throughput(1, 0)));
  t.deepEqual(rounds(10, 4), [4, 4, 2]);
  t.deepEqual(rounds(3, 1), [1, 1, 1]);
  t.deepEqual(rounds(0, 4), []);
  t.deepEqual(interleaveOrder(4, 2), [
    [0, 1],
    [1, 0],
    [0, 1],
    [1, 0],
  ]);
  t.deepEqual(interleaveOrder(2, 1), [[0], [0]]);
});

test('cpuSecondsFromStat reads utime+stime after a comm with spaces and parentheses', (t) => {
  // fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime …
  const stat = '1234 (my (odd) daemon) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 30 20 20 0 1 0 100 0 0';
  t.deepEqual(cpuSecondsFromStat(stat, 100), { self: 3, children: 0.5 });
});

const LOG = [
  'time="2026-01-01T00:00:00.000Z" level=info msg="request" rpc=RunPodSandbox id=2',
  'time="2026-01-01T00:00:00.010Z" level=info msg="container state" container=pod1 state=STARTING',
  'time="2026-01-01T00:00:00.011Z" level=info msg="container state" container=pod1 state=PREPARING',
  'time="2026-01-01T00:00:00.041Z" level=info msg="container state" container=pod1 state=ISOLATING',
  'time="2026-01-01T00:00:00.061Z" level=info msg="container state" container=pod1 state=RUNNING',
  'time="2026-01-01T00:00:00.063Z" level=info msg="pod sandbox ready" pod=pod1 name="a b"',
  'time="2026-01-01T00:00:00.064Z" level=info msg="response" rpc=RunPodSandbox id=2 ms=64.5',
  'time="2026-01-01T00:00:00.100Z" level=info msg="container state" container=pod1.c1 state=ISOLATING',
  'time="2026-01-01T00:00:00.150Z" level=info msg="container state" container=pod1.c1 state=FETCHING',
  'time="2026-01-01T00:00:09.000Z" level=info msg="container state" container=pod1.c1 state=RUNNING',
  'time="2026-01-01T00:00:20.000Z" level=info msg="container state" container=pod1.c1 state=DESTROYING',
  'time="2026-01-01T00:00:20.040Z" level=info msg="container state" container=pod1.c1 state=TERMINATED',
  'time="2026-01-01T00:00:21.000Z" level=info msg="response" rpc=StopContainer id=9 ms=40.25',
  'time="2026-01-01T00:00:22.000Z" level=info msg="container state" container=pod1.c2 state=FETCHING',
  'time="2026-01-01T00:00:30.000Z" level=info msg="container state" container=pod1.c2 state=DESTROYING',
  'not a log line',
].join('\n');

test('phasesFromLog: state-transition durations, without the waiting ones', (t) => {
  t.deepEqual(logfmtFields(' a=1 b="x \\"y\\"" c='), { a: '1', b: 'x "y"', c: '' });
  t.deepEqual(phasesFromLog(LOG), [
    { kind: 'pod', phase: 'STARTING→PREPARING', ms: 1 },
    { kind: 'pod', phase: 'PREPARING→ISOLATING', ms: 30 },
    { kind: 'pod', phase: 'ISOLATING→RUNNING', ms: 20 },
    { kind: 'pod', phase: 'RUNNING→ready', ms: 2 },
    { kind: 'container', phase: 'ISOLATING→FETCHING', ms: 50 },
    { kind: 'container', phase: 'DESTROYING→TERMINATED', ms: 40 },
  ]);
  t.deepEqual(rpcTimesFromLog(LOG), { RunPodSandbox: [64.5], StopContainer: [40.25] });
  const sp = summarizePhases([...phasesFromLog(LOG), { kind: 'pod', phase: 'PREPARING→ISOLATING', ms: 10 }]);
  t.is(sp.find((p) => p.phase === 'PREPARING→ISOLATING')!.summary.p50, 20);
});

function snapshot(fds: number, rssKb: number, extra: Partial<Leftovers> = {}): Leftovers {
  const none = { mounts: [], cgroups: [], runtimeDirs: [], provisioned: [], records: [], processes: [], pooled: 0 };
  return { fds: Array.from({ length: fds }, (_, i) => `pipe:[${i}]`), ...none, rssKb, peakRssKb: rssKb + 1024, ...extra };
}

function raw(two = true): RawResults {
  const runtimes = [
    { id: 'A', label: 'cri-mesos', endpoint: 'unix:///a.sock', runtimeName: 'cri-mesos', runtimeVersion: '0.1.0', pid: 10, origin: 'own daemon' },
    { id: 'B', label: 'containerd', endpoint: 'unix:///b.sock', runtimeName: 'containerd', runtimeVersion: '1.6.20', pid: 20, origin: 'reference' },
  ].slice(0, two ? 2 : 1);
  return {
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt: '2026-01-01T00:01:00.000Z',
    host: { cpus: 2, kernel: '6.18', loadavgStart: [1, 1, 1], loadavgEnd: [2, 2, 2], memTotalMb: 24000 },
    params: { iterations: 4, concurrency: 1 },
    networkMode: 'host network <NODE> & "no CNI"',
    runtimes,
    ops: [
      { workload: 'pod lifecycle', op: 'RunPodSandbox', samples: { A: [10, 20, 30, 40], B: [20, 40, 60, 80] }, errors: {} },
      { workload: 'pod lifecycle', op: 'StopPodSandbox', samples: { A: [1, 2, 3, 4], B: [0.5, 1, 1.5, 2] }, errors: { B: { count: 1, first: 'boom <x>' } } },
      { workload: 'exec', op: 'ExecSync', samples: { A: [5, 5, 5, 5] }, errors: {} },
    ],
    bursts: [
      { runtime: 'A', pods: 100, ready: 100, wallMs: 2000 },
      { runtime: 'A', pods: 100, ready: 100, wallMs: 4000 },
      { runtime: 'B', pods: 100, ready: 100, wallMs: 6000 },
    ].filter((b) => two || b.runtime === 'A'),
    resources: [
      { runtime: 'A', runningContainers: 100, pods: 100, daemonRssKb: 102400, helperCount: 200, helperRssKb: 512000, helperPssKb: 102400, helperKinds: { 'cri-mesos-launch': 200 } },
    ],
    cpu: [{ runtime: 'A', totalSeconds: 12.345, childrenSeconds: 1, perWorkload: { pod: 1.234 } }],
    phases: { A: phasesFromLog(LOG) },
    soak: [
      {
        runtime: 'A',
        cycles: 1000,
        failed: 0,
        warmup: 10,
        settleMs: 2000,
        start: snapshot(20, 60 * 1024),
        before: snapshot(20, 70 * 1024),
        after: snapshot(21, 72 * 1024, { mounts: ['/w/provisioner/x/rootfs'] }),
        leaked: { fds: ['anon_inode:[pidfd]'], mounts: ['/w/provisioner/x/rootfs'], cgroups: [], runtimeDirs: [], provisioned: [], records: [], processes: [] },
        maxRssKb: 80 * 1024,
        rssTrace: [
          { cycle: 500, rssKb: 71 * 1024 },
          { cycle: 1000, rssKb: 72 * 1024 },
        ],
      },
    ],
    restart: [
      { runtime: 'A', round: 1, pods: 100, containers: 200, killed: 20, acceptMs: 310.2, servingMs: 305, recoveredMs: 720, versionMs: 731.4, listMs: 745.9, listed: 200, killedExitedMs: 760.1, allRightMs: 760.1 },
      { runtime: 'A', round: 2, pods: 100, containers: 200, killed: 40, acceptMs: 290, servingMs: null, recoveredMs: null, versionMs: 1500, listMs: 1512, listed: 200, killedExitedMs: null, allRightMs: null },
    ],
    notes: ['a note'],
  };
}

test('an "A docker" column: its own stats and header; B/A stays B over A, and without B there is no ratio', (t) => {
  const dockerInfo = { id: 'A docker', label: 'cri-mesos docker handler', endpoint: 'unix:///c.sock', runtimeName: 'cri-mesos', runtimeVersion: '0.1.0', pid: 30, origin: 'own daemon' };
  const withDocker = (r: RawResults): RawResults => ({
    ...r,
    runtimes: [...r.runtimes, dockerInfo],
    ops: r.ops.map((o) => (o.workload === 'pod lifecycle' ? { ...o, samples: { ...o.samples, 'A docker': [100, 100, 100, 100] } } : o)),
  });
  const three = buildReport(withDocker(raw()));
  const run = three.ops.find((o) => o.op === 'RunPodSandbox')!;
  t.is(run.stats['A docker']!.p50, 100);
  t.is(run.ratio!.p50, 2, 'B/A, not A docker/A');
  const text = renderTable(three);
  t.regex(text, /A docker p50/);
  t.regex(text, /B\/A p50/);
  t.regex(text, /A docker = cri-mesos docker handler/);
  t.notRegex(text, /A docker: \d+ pods at once/, 'no burst row for a target that ran no burst');
  const noB = buildReport(withDocker(raw(false)));
  t.is(noB.ops.find((o) => o.op === 'RunPodSandbox')!.ratio, null);
  t.notRegex(renderTable(noB), /B\/A/);
});

test('buildReport: JSON shape with per-runtime stats, B/A ratios and burst throughput', (t) => {
  const rep = buildReport(raw());
  const json = JSON.parse(JSON.stringify(rep)) as typeof rep;
  t.is(json.schema, 'cri-mesos-bench/1');
  t.deepEqual(
    json.runtimes.map((r) => r.id),
    ['A', 'B'],
  );
  t.is(json.ops.length, 3);
  const run = json.ops[0]!;
  t.is(run.stats.A!.p50, 25);
  t.is(run.stats.B!.p50, 50);
  t.is(run.stats.A!.n, 4);
  t.deepEqual(run.ratio, { p50: 2, p95: 2, p99: 2 });
  t.deepEqual(run.samples.A, [10, 20, 30, 40]);
  t.is(json.ops[1]!.ratio!.p50, 0.5);
  t.is(json.ops[1]!.errors.B!.count, 1);
  const exec = json.ops[2]!;
  t.is(exec.stats.B, null, 'no samples → null stats');
  t.deepEqual(exec.ratio, { p50: null, p95: null, p99: null });
  const a = json.bursts.find((b) => b.runtime === 'A')!;
  t.is(a.runs.length, 2);
  t.is(a.runs[0]!.podsPerSecond, 50);
  t.is(a.podsPerSecond, 37.5);
  t.is(a.wallMs!.p50, 3000);
  t.is(json.burstRatio, 2);
  t.is(json.resources[0]!.helperPssPerContainerKb, 1024);
  t.is(json.cpu[0]!.totalSeconds, 12.35);
  t.true(json.phases.A!.some((p) => p.phase === 'PREPARING→ISOLATING' && p.summary.p50 === 30));
  t.is(buildReport(raw(false)).ops[0]!.ratio, null, 'one runtime: no ratios');
  t.is(json.soak[0]!.rssGrowthKb, 2048);
  t.is(json.soak[0]!.after.fds.length, 21);
  t.is(json.restart[1]!.killedExitedMs, null);
});

test('renderTable: header, one row per op with both runtimes and ratios, bursts, memory, errors', (t) => {
  const text = renderTable(buildReport(raw()));
  const lines = text.split('\n');
  t.regex(lines[0]!, /pods: host network <NODE>/);
  t.regex(text, /A = cri-mesos: cri-mesos 0\.1\.0 at unix:\/\/\/a\.sock/);
  const head = lines.find((l) => l.startsWith('workload'))!;
  for (const col of ['A p50', 'A p95', 'A p99', 'A min', 'A max', 'B p50', 'B max', 'B/A p50', 'B/A p95', 'errors']) t.true(head.includes(col), col);
  const row = lines.find((l) => l.includes('RunPodSandbox'))!;
  t.regex(row, /^pod lifecycle\s+RunPodSandbox\s+4\/4\s+25\.00\s/);
  t.regex(row, /2\.00x\s+2\.00x\s+0\/0$/);
  t.regex(lines.find((l) => l.includes('StopPodSandbox'))!, /^\s+StopPodSandbox/, 'the workload name is not repeated');
  t.regex(lines.find((l) => l.includes('ExecSync'))!, /4\/0 .* - +- +0\/0$/);
  t.regex(text, /A: 100 pods at once until all READY\s+2\s+3000\s+2000\s+4000\s+37\.5/);
  t.regex(text, /burst wall time B\/A: 2\.00x/);
  t.regex(text, /A\s+100\s+100\s+100\.0 MB\s+200\s+500\.0 MB\s+100\.0 MB\s+1\.00 MB\s+cri-mesos-launch×200/);
  t.regex(text, /B pod lifecycle\/StopPodSandbox: 1× boom <x>/);
  t.regex(text, /PREPARING→ISOLATING/);
  t.regex(text, /soak A: 1000 cycles after 10 warm-up cycles/);
  t.regex(text, /daemon fds\s+20\s+20\s+21\s+1$/m);
  t.regex(text, /mounts under its work\/runtime dirs\s+0\s+0\s+1\s+1$/m);
  t.regex(text, /daemon RSS\s+60\.0 MB\s+70\.0 MB\s+72\.0 MB\s+\+2\.0 MB$/m);
  t.regex(text, /daemon RSS peak: 80\.0 MB sampled after each cycle, 73\.0 MB VmHWM/);
  t.regex(text, /leaked daemon fds: anon_inode:\[pidfd\]/);
  t.regex(text, /daemon RSS MB after cycle 500: 71\.0, 1000: 72\.0/);
  t.regex(text, /restart A: kill -9 of a daemon with 100 pods and 200 running containers/);
  t.regex(text, /^\s+1\s+20\s+310\.2\s+305\.0\s+720\.0\s+731\.4\s+745\.9\s+200\s+760\.1\s+760\.1$/m);
  t.regex(text, /^\s+2\s+40\s+290\.0\s+-\s+-\s+1500\s+1512\s+200\s+-\s+-$/m);
  t.regex(text, /- a note/);
  const single = renderTable(buildReport(raw(false)));
  t.false(single.includes('B/A'));
});

/** A small XML well-formedness check: balanced tags, quoted attributes, no stray '<' or '&'. */
function assertWellFormed(t: ExecutionContext, xml: string): void {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  let m: RegExpExecArray | null;
  let roots = 0;
  while ((m = tag.exec(body))) {
    const text = body.slice(last, m.index);
    if (/[<>]/.test(text) || /&(?!(lt|gt|amp|quot|apos);)/.test(text)) return t.fail(`bad text: ${text.slice(0, 80)}`);
    last = tag.lastIndex;
    const [, close, name, , self] = m;
    if (close) {
      if (stack.pop() !== name) return t.fail(`unbalanced </${name}>`);
    } else if (!self) {
      if (!stack.length) roots++;
      stack.push(name!);
    } else if (!stack.length) roots++;
  }
  if (body.slice(last).trim()) return t.fail(`trailing text: ${body.slice(last, last + 80)}`);
  t.deepEqual(stack, [], 'every element is closed');
  t.is(roots, 1, 'one root element');
}

test('renderSvg: a well-formed SVG with a row per op and runtime, escaped text, one dot per sample', (t) => {
  const svg = renderSvg(buildReport(raw()));
  t.true(svg.startsWith('<?xml'));
  t.regex(svg, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assertWellFormed(t, svg);
  t.true(svg.includes('host network &lt;NODE&gt; &amp; &quot;no CNI&quot;'));
  t.false(svg.includes('<NODE>'));
  t.is((svg.match(/<circle /g) ?? []).length, 4 + 4 + 4 + 4 + 4, 'every sample is drawn');
  t.true(svg.includes('pod lifecycle: RunPodSandbox'));
  t.is(svg, renderSvg(buildReport(raw())), 'deterministic');
  assertWellFormed(t, renderSvg(buildReport({ ...raw(), ops: [] })));
});

test('logTime: the first line of the text log with that msg', (t) => {
  const log = [
    'time="2026-01-01T00:00:01.250Z" level=info msg="serving CRI" socket=/x.sock',
    'time="2026-01-01T00:00:02.000Z" level=info msg="recovery done" pods=1 containers=2',
    'time="2026-01-01T00:00:03.000Z" level=info msg="recovery done" pods=1 containers=2',
  ].join('\n');
  t.is(logTime(log, 'serving CRI'), Date.parse('2026-01-01T00:00:01.250Z'));
  t.is(logTime(log, 'recovery done'), Date.parse('2026-01-01T00:00:02.000Z'));
  t.is(logTime(log, 'recovery'), null, 'the whole msg');
});

test('leaked: what is new since the baseline; fds by kind, so reused inodes do not count', (t) => {
  const before = snapshot(0, 0, { fds: ['pipe:[1]', 'pipe:[1]', 'socket:[5]', '/dev/null'], processes: ['10 esbuild'] });
  const after = snapshot(0, 0, {
    fds: ['pipe:[7]', 'pipe:[7]', 'socket:[9]', 'anon_inode:[pidfd]', '/dev/null', '/dev/null'],
    cgroups: ['/sys/fs/cgroup/pids/r/p'],
    processes: ['10 esbuild', '42 cri-mesos-launc'],
  });
  t.deepEqual(leaked(before, after), {
    fds: ['anon_inode:[pidfd]', '/dev/null'],
    mounts: [],
    cgroups: ['/sys/fs/cgroup/pids/r/p'],
    runtimeDirs: [],
    provisioned: [],
    records: [],
    processes: ['42 cri-mesos-launc'],
  });
  t.is(fdKind('anon_inode:[eventpoll]'), 'anon_inode:[eventpoll]');
  t.is(fdKind('socket:[123]'), 'socket');
});

test('formatting helpers', (t) => {
  t.is(fmtMs(1234.5), '1235');
  t.is(fmtMs(123.45), '123.5');
  t.is(fmtMs(12.345), '12.35');
  t.is(fmtMs(0.1234), '0.123');
  t.is(fmtMs(undefined), '-');
  t.is(fmtMs(null), '-');
  t.is(tickLabel(1000), '1000');
  t.is(tickLabel(0.1 * 2), '0.2');
  t.is(tickLabel(0.001 * 5), '0.005');
  t.is(escapeXml(`<a href="x">&'</a>`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;');
});

test('steps: the daemon\'s step lines grouped by kind and by RPC, pod or container', (t) => {
  const log = [
    'time="x" level=debug msg="launch steps" container=aaa ms={"spawn":1.5,"release":2} podName=p podNamespace=n',
    'time="x" level=debug msg="launch steps" container=aaa.bbb ms={"spawn":0.9} podName=p podNamespace=n',
    'time="x" level=debug msg="rpc steps" rpc=RunPodSandbox pod=aaa ms={"record":0.7,"launch":10.5}',
    'time="x" level=info msg="container state" container=aaa state=RUNNING',
  ].join('\n');
  const g = stepGroups(log);
  t.deepEqual([...g.keys()], ['launch steps: pod', 'launch steps: container', 'rpc steps: RunPodSandbox']);
  t.deepEqual(g.get('launch steps: pod'), [{ spawn: 1.5, release: 2 }]);
  t.deepEqual(g.get('rpc steps: RunPodSandbox'), [{ record: 0.7, launch: 10.5 }]);
});

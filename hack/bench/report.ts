// Pure rendering for hack/bench: the raw results → the JSON report, the
// terminal table and the SVG chart. No I/O here.
import { ratio, summarize, summarizePhases, throughput, type PhaseSample, type Summary } from './stats.js';
import type { Category, Leftovers } from '../../test/helpers/leaks.js';

export interface RuntimeInfo {
  /** "A" (the runtime under test) or "B" (--vs) */
  id: string;
  label: string;
  endpoint: string;
  runtimeName: string;
  runtimeVersion: string;
  pid?: number;
  /** how it was started: "own daemon (dist)", "containerd-reference.sh", "external" */
  origin: string;
}

export interface OpSamples {
  /** workload name, e.g. "pod lifecycle" */
  workload: string;
  op: string;
  /** latencies in ms per runtime id */
  samples: Record<string, number[]>;
  /** failed calls per runtime id */
  errors: Record<string, { count: number; first: string }>;
}

export interface BurstRun {
  runtime: string;
  pods: number;
  ready: number;
  wallMs: number;
}

export interface Resources {
  runtime: string;
  runningContainers: number;
  pods: number;
  daemonRssKb: number;
  helperCount: number;
  helperRssKb: number;
  helperPssKb: number;
  /** what the helpers are, e.g. { "cri-mesos-launch": 200 } */
  helperKinds: Record<string, number>;
}

export interface CpuUse {
  runtime: string;
  /** daemon utime+stime over the whole run, seconds */
  totalSeconds: number;
  /** the same for the daemon's reaped children (cri-mesos: its helpers; containerd: none, shims are not its children) */
  childrenSeconds: number;
  perWorkload: Record<string, number>;
}

export interface SoakRun {
  runtime: string;
  /** measured cycles that ran through, and those where a call failed */
  cycles: number;
  failed: number;
  /** untimed cycles before the baseline */
  warmup: number;
  /** wait after the last cycle before the "after" snapshot */
  settleMs: number;
  /** the daemon at the start, after the warm-up (the baseline), and after the last cycle and the settle */
  start: Leftovers;
  before: Leftovers;
  after: Leftovers;
  /** new in "after" since the baseline, per category (fds by kind) */
  leaked: Record<Category, string[]>;
  /** the highest daemon RSS sampled after each cycle */
  maxRssKb: number;
  /** the daemon's RSS after every tenth of the cycles: a leak keeps climbing, warming up levels off */
  rssTrace: { cycle: number; rssKb: number }[];
}

/** One kill -9 and restart of a daemon holding pods × 2 running containers; times in ms from the new daemon's spawn. */
export interface RestartRun {
  runtime: string;
  round: number;
  pods: number;
  containers: number;
  /** containers whose process was killed while the daemon was down (all rounds so far) */
  killed: number;
  /** its socket accepts a connection */
  acceptMs: number;
  /** its log says "serving CRI" / "recovery done" (ms resolution; null without a text log) */
  servingMs: number | null;
  recoveredMs: number | null;
  /** the first RPC answer (Version) */
  versionMs: number;
  /** ListContainers answered, listing `listed` containers */
  listMs: number;
  listed: number;
  /** ListContainers shows every killed container EXITED (null: not within the deadline) */
  killedExitedMs: number | null;
  /** every pod READY, every container RUNNING or (the killed ones) EXITED */
  allRightMs: number | null;
}

export interface RawResults {
  startedAt: string;
  finishedAt: string;
  host: { cpus: number; kernel: string; loadavgStart: number[]; loadavgEnd: number[]; memTotalMb: number };
  params: Record<string, unknown>;
  networkMode: string;
  runtimes: RuntimeInfo[];
  ops: OpSamples[];
  bursts: BurstRun[];
  resources: Resources[];
  /** the steady workload: the daemon's CPU (% of one core) under kubelet steady-state calls */
  steady?: { runtime: string; seconds: number; cpuPercent: number }[];
  cpu: CpuUse[];
  /** cri-mesos state-transition durations from its own log, per runtime id (only daemons the bench started) */
  phases: Record<string, PhaseSample[]>;
  soak: SoakRun[];
  restart: RestartRun[];
  notes: string[];
}

export interface ReportOp {
  workload: string;
  op: string;
  stats: Record<string, Summary | null>;
  errors: Record<string, { count: number; first: string }>;
  /** B/A of p50, p95, p99 (only with two runtimes) */
  ratio: { p50: number | null; p95: number | null; p99: number | null } | null;
  samples: Record<string, number[]>;
}

export interface Report {
  schema: 'cri-mesos-bench/1';
  startedAt: string;
  finishedAt: string;
  host: RawResults['host'];
  params: Record<string, unknown>;
  networkMode: string;
  runtimes: RuntimeInfo[];
  ops: ReportOp[];
  bursts: { runtime: string; runs: (BurstRun & { podsPerSecond: number })[]; wallMs: Summary | null; podsPerSecond: number | null }[];
  burstRatio: number | null;
  resources: (Resources & { helperRssPerContainerKb: number; helperPssPerContainerKb: number })[];
  cpu: CpuUse[];
  phases: Record<string, { kind: string; phase: string; summary: Summary }[]>;
  soak: (SoakRun & { rssGrowthKb: number })[];
  restart: RestartRun[];
  notes: string[];
}

const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

function roundSummary(s: Summary | undefined): Summary | null {
  if (!s) return null;
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, k === 'n' ? v : round(v)])) as unknown as Summary;
}

export function buildReport(raw: RawResults): Report {
  const ids = raw.runtimes.map((r) => r.id);
  // B/A: A and B, whatever other columns there are ("A docker")
  const a = ids[0];
  const b = ids.includes('B') ? 'B' : undefined;
  const ops: ReportOp[] = raw.ops.map((o) => {
    const stats: Record<string, Summary | null> = {};
    for (const id of ids) stats[id] = roundSummary(summarize(o.samples[id] ?? []));
    const sa = a ? stats[a] : null;
    const sb = b ? stats[b] : null;
    const r = (k: 'p50' | 'p95' | 'p99') => {
      const v = ratio(sa?.[k], sb?.[k]);
      return v === undefined ? null : round(v);
    };
    return {
      workload: o.workload,
      op: o.op,
      stats,
      errors: o.errors,
      ratio: b ? { p50: r('p50'), p95: r('p95'), p99: r('p99') } : null,
      samples: Object.fromEntries(ids.map((id) => [id, (o.samples[id] ?? []).map((x) => round(x))])),
    };
  });
  const bursts = ids.map((id) => {
    const runs = raw.bursts.filter((x) => x.runtime === id).map((x) => ({ ...x, wallMs: round(x.wallMs), podsPerSecond: round(throughput(x.ready, x.wallMs)) }));
    const wall = summarize(runs.map((x) => x.wallMs));
    const pps = runs.length ? round(runs.reduce((s, x) => s + x.podsPerSecond, 0) / runs.length) : null;
    return { runtime: id, runs, wallMs: roundSummary(wall), podsPerSecond: pps };
  });
  const ba = bursts.find((x) => x.runtime === a)?.wallMs?.p50;
  const bb = bursts.find((x) => x.runtime === b)?.wallMs?.p50;
  const br = b ? ratio(ba, bb) : undefined;
  return {
    schema: 'cri-mesos-bench/1',
    startedAt: raw.startedAt,
    finishedAt: raw.finishedAt,
    host: raw.host,
    params: raw.params,
    networkMode: raw.networkMode,
    runtimes: raw.runtimes,
    ops,
    bursts,
    burstRatio: br === undefined ? null : round(br),
    resources: raw.resources.map((r) => ({
      ...r,
      helperRssPerContainerKb: r.runningContainers ? Math.round(r.helperRssKb / r.runningContainers) : 0,
      helperPssPerContainerKb: r.runningContainers ? Math.round(r.helperPssKb / r.runningContainers) : 0,
    })),
    cpu: raw.cpu.map((c) => ({
      ...c,
      totalSeconds: round(c.totalSeconds, 2),
      childrenSeconds: round(c.childrenSeconds, 2),
      perWorkload: Object.fromEntries(Object.entries(c.perWorkload).map(([k, v]) => [k, round(v, 2)])),
    })),
    phases: Object.fromEntries(
      Object.entries(raw.phases).map(([id, s]) => [id, summarizePhases(s).map((p) => ({ ...p, summary: roundSummary(p.summary)! }))]),
    ),
    soak: raw.soak.map((s) => ({ ...s, rssGrowthKb: s.after.rssKb - s.before.rssKb })),
    restart: raw.restart,
    notes: raw.notes,
  };
}

// ---- terminal table -----------------------------------------------------------

export function fmtMs(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '-';
  if (x >= 1000) return x.toFixed(0);
  if (x >= 100) return x.toFixed(1);
  if (x >= 10) return x.toFixed(2);
  return x.toFixed(3);
}

function fmtRatio(x: number | null | undefined): string {
  return x === null || x === undefined ? '-' : `${x.toFixed(2)}x`;
}

const mb = (kb: number) => `${(kb / 1024).toFixed(1)} MB`;

function table(rows: string[][], align: ('l' | 'r')[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (align[i] === 'l' ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function renderTable(rep: Report): string {
  const ids = rep.runtimes.map((r) => r.id);
  const two = ids.includes('B');
  const out: string[] = [];
  out.push(
    `CRI benchmark, ${rep.startedAt} · ${rep.host.cpus} CPUs, kernel ${rep.host.kernel} · pods: ${rep.networkMode} · ` +
      `iterations ${String(rep.params.iterations)}, concurrency ${String(rep.params.concurrency)}` +
      (two ? ' · interleaved A/B' : ''),
  );
  for (const r of rep.runtimes) out.push(`  ${r.id} = ${r.label}: ${r.runtimeName} ${r.runtimeVersion} at ${r.endpoint} (${r.origin})`);
  out.push('  latencies in ms, measured at the client');
  out.push('');
  const head = ['workload', 'operation', 'n'];
  for (const id of ids) head.push(`${id} p50`, `${id} p95`, `${id} p99`, `${id} min`, `${id} max`);
  if (two) head.push('B/A p50', 'B/A p95', 'errors');
  else head.push('errors');
  const rows = [head];
  let lastWorkload = '';
  for (const o of rep.ops) {
    const n = ids.map((id) => o.stats[id]?.n ?? 0).join('/');
    const row = [o.workload === lastWorkload ? '' : o.workload, o.op, n];
    lastWorkload = o.workload;
    for (const id of ids) {
      const s = o.stats[id];
      row.push(fmtMs(s?.p50), fmtMs(s?.p95), fmtMs(s?.p99), fmtMs(s?.min), fmtMs(s?.max));
    }
    if (two) row.push(fmtRatio(o.ratio?.p50), fmtRatio(o.ratio?.p95));
    row.push(ids.map((id) => o.errors[id]?.count ?? 0).join('/'));
    rows.push(row);
  }
  // restart alone times no RPC rows: no header without rows
  if (rep.ops.length) out.push(table(rows, ['l', 'l', ...rows[0]!.slice(2).map(() => 'r' as const)]));
  else out.push('(no per-RPC latencies in this run)');

  if (rep.bursts.some((b) => b.runs.length)) {
    out.push('');
    const pods = rep.bursts.flatMap((b) => b.runs.map((r) => r.pods))[0] ?? 0;
    const brow = [['burst', 'runs', 'wall p50 ms', 'wall min', 'wall max', 'pods/s']];
    for (const b of rep.bursts) {
      if (!b.runs.length) continue;
      brow.push([`${b.runtime}: ${pods} pods at once until all READY`, String(b.runs.length), fmtMs(b.wallMs?.p50), fmtMs(b.wallMs?.min), fmtMs(b.wallMs?.max), b.podsPerSecond?.toFixed(1) ?? '-']);
    }
    out.push(table(brow, ['l', 'r', 'r', 'r', 'r', 'r']));
    if (two) out.push(`burst wall time B/A: ${fmtRatio(rep.burstRatio)}`);
  }

  if (rep.resources.length) {
    out.push('');
    const rrow = [['memory', 'running ctrs', 'pods', 'daemon RSS', 'helpers', 'helper RSS sum', 'helper PSS sum', 'PSS per ctr', 'helper kinds']];
    for (const r of rep.resources) {
      rrow.push([
        r.runtime,
        String(r.runningContainers),
        String(r.pods),
        mb(r.daemonRssKb),
        String(r.helperCount),
        mb(r.helperRssKb),
        mb(r.helperPssKb),
        `${(r.helperPssPerContainerKb / 1024).toFixed(2)} MB`,
        Object.entries(r.helperKinds)
          .map(([k, v]) => `${k}×${v}`)
          .join(', '),
      ]);
    }
    out.push(table(rrow, ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l']));
  }

  if (rep.cpu.length) {
    out.push('');
    const workloads = [...new Set(rep.cpu.flatMap((c) => Object.keys(c.perWorkload)))];
    const crow = [['daemon CPU s', 'total', '+reaped children', ...workloads]];
    for (const c of rep.cpu) crow.push([c.runtime, c.totalSeconds.toFixed(2), c.childrenSeconds.toFixed(2), ...workloads.map((w) => c.perWorkload[w]?.toFixed(2) ?? '-')]);
    out.push(table(crow, ['l', ...crow[0]!.slice(1).map(() => 'r' as const)]));
  }

  for (const [id, phases] of Object.entries(rep.phases)) {
    if (!phases.length) continue;
    out.push('');
    out.push(`${id}: cri-mesos state transitions from its info log (ms, log resolution 1 ms)`);
    const prow = [['kind', 'transition', 'n', 'p50', 'p95', 'max']];
    for (const p of phases) prow.push([p.kind, p.phase, String(p.summary.n), fmtMs(p.summary.p50), fmtMs(p.summary.p95), fmtMs(p.summary.max)]);
    out.push(table(prow, ['l', 'l', 'r', 'r', 'r', 'r']));
  }

  for (const s of rep.soak) out.push('', ...renderSoak(s));
  if (rep.restart.length) out.push('', ...renderRestart(rep.restart));

  const errs = rep.ops.flatMap((o) => Object.entries(o.errors).map(([id, e]) => `  ${id} ${o.workload}/${o.op}: ${e.count}× ${e.first}`));
  if (errs.length) {
    out.push('');
    out.push('errors (first message of each):');
    out.push(...errs);
  }
  if (rep.notes.length) {
    out.push('');
    out.push('notes:');
    out.push(...rep.notes.map((n) => `  - ${n}`));
  }
  return out.join('\n') + '\n';
}

const SOAK_ROWS: [Category, string][] = [
  ['fds', 'daemon fds'],
  ['mounts', 'mounts under its work/runtime dirs'],
  ['cgroups', 'cgroups under its cgroup root'],
  ['runtimeDirs', 'dirs in <runtime dir>/containers'],
  ['provisioned', 'dirs in <work dir>/provisioner'],
  ['records', 'records in <work dir>/meta'],
  ['processes', 'processes (its cgroups, its children)'],
];

function renderSoak(s: Report['soak'][number]): string[] {
  const out = [
    `soak ${s.runtime}: ${s.cycles} cycles${s.failed ? ` (+${s.failed} with a failed call)` : ''} after ${s.warmup} warm-up cycles; ` +
      `"before" after the warm-up, "after" ${s.settleMs} ms after the last cycle; leaked = new since "before"`,
  ];
  const rows = [['', 'start', 'before', 'after', 'leaked']];
  for (const [c, label] of SOAK_ROWS) {
    rows.push([label, String(s.start[c].length), String(s.before[c].length), String(s.after[c].length), String(c === 'fds' ? s.after.fds.length - s.before.fds.length : s.leaked[c].length)]);
  }
  const sign = (kb: number) => `${kb >= 0 ? '+' : ''}${(kb / 1024).toFixed(1)} MB`;
  rows.push(['daemon RSS', mb(s.start.rssKb), mb(s.before.rssKb), mb(s.after.rssKb), sign(s.rssGrowthKb)]);
  out.push(table(rows, ['l', 'r', 'r', 'r', 'r']));
  out.push(`daemon RSS peak: ${mb(s.maxRssKb)} sampled after each cycle, ${mb(s.after.peakRssKb)} VmHWM (since it started)`);
  if (s.rssTrace.length) out.push(`daemon RSS MB after cycle ${s.rssTrace.map((x) => `${x.cycle}: ${(x.rssKb / 1024).toFixed(1)}`).join(', ')}`);
  for (const [c, label] of SOAK_ROWS) {
    const items = s.leaked[c];
    if (items.length) out.push(`  leaked ${label}: ${items.slice(0, 10).join(', ')}${items.length > 10 ? `, … (${items.length})` : ''}`);
  }
  return out;
}

function renderRestart(runs: RestartRun[]): string[] {
  const f = (x: number | null) => (x === null ? '-' : fmtMs(x));
  const r0 = runs[0]!;
  const out = [
    `restart ${r0.runtime}: kill -9 of a daemon with ${r0.pods} pods and ${r0.containers} running containers, some of them killed while it was down; ms from the new daemon's spawn`,
  ];
  const rows = [['round', 'killed', 'socket accepts', 'log: serving', 'log: recovery done', 'first answer', 'ListContainers', 'listed', 'killed EXITED', 'all in state']];
  for (const r of runs) {
    rows.push([String(r.round), String(r.killed), f(r.acceptMs), f(r.servingMs), f(r.recoveredMs), f(r.versionMs), f(r.listMs), String(r.listed), f(r.killedExitedMs), f(r.allRightMs)]);
  }
  out.push(table(rows, ['r', ...rows[0]!.slice(1).map(() => 'r' as const)]));
  return out;
}

// ---- SVG chart -------------------------------------------------------------------

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** 0.1, 0.2, 0.5, 1, 2, 5, 10, … without float noise. */
export function tickLabel(v: number): string {
  return String(Number(v.toPrecision(3)));
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728'];

/** Deterministic jitter in [-1, 1] for the i-th point (no Math.random: the SVG is reproducible). */
function jitter(i: number): number {
  const x = Math.sin(i * 12.9898 + 78.233) * 43758.5453;
  return (x - Math.floor(x)) * 2 - 1;
}

/**
 * Box plots on a log time axis, one row per operation and runtime: the box spans p25–p75 with the median
 * as a thick line, whiskers go to min and max, ticks mark p95 and p99, and every sample is a dot.
 */
export function renderSvg(rep: Report): string {
  const ids = rep.runtimes.map((r) => r.id);
  const ops = rep.ops.filter((o) => ids.some((id) => (o.samples[id] ?? []).length));
  const all = ops.flatMap((o) => ids.flatMap((id) => o.samples[id] ?? [])).filter((x) => x > 0);
  const lo = Math.pow(10, Math.floor(Math.log10(Math.max(1e-3, Math.min(...(all.length ? all : [0.1]))))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...(all.length ? all : [1000]), lo * 10))));
  const left = 340;
  const plotW = 760;
  const rowH = 16;
  const groupH = ids.length * rowH + 10;
  const top = 70 + ids.length * 16;
  const width = left + plotW + 30;
  const height = top + ops.length * groupH + 50;
  const x = (ms: number) => left + ((Math.log10(Math.max(ms, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW;
  const f = (n: number) => n.toFixed(1);
  const el: string[] = [];
  el.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="white"/>`);
  el.push(
    `<text x="10" y="22" font-size="15" font-weight="bold">${escapeXml(`CRI latency per operation (ms, log scale) · ${rep.startedAt}`)}</text>`,
  );
  el.push(
    `<text x="${width - 10}" y="44" font-size="11" text-anchor="end" fill="#555">${escapeXml(`pods: ${rep.networkMode} · n=${String(rep.params.iterations)}, c=${String(rep.params.concurrency)}`)}</text>`,
  );
  rep.runtimes.forEach((r, i) => {
    const y = 44 + i * 16;
    el.push(`<rect x="10" y="${y - 9}" width="12" height="10" fill="${COLORS[i % COLORS.length]}"/>`);
    el.push(`<text x="28" y="${y}" font-size="12">${escapeXml(`${r.id} = ${r.label} (${r.runtimeName} ${r.runtimeVersion})`)}</text>`);
  });
  // grid + axis
  for (let d = lo; d <= hi * 1.0001; d *= 10) {
    for (const m of [1, 2, 5]) {
      const v = d * m;
      if (v > hi * 1.0001) break;
      const gx = x(v);
      el.push(`<line x1="${f(gx)}" y1="${top - 6}" x2="${f(gx)}" y2="${top + ops.length * groupH}" stroke="${m === 1 ? '#bbb' : '#eee'}" stroke-width="1"/>`);
      if (m === 1 || ops.length) {
        el.push(`<text x="${f(gx)}" y="${top + ops.length * groupH + 16}" font-size="10" text-anchor="middle" fill="#555">${escapeXml(tickLabel(v))}</text>`);
      }
    }
  }
  el.push(`<text x="${left + plotW / 2}" y="${top + ops.length * groupH + 34}" font-size="12" text-anchor="middle">milliseconds</text>`);
  ops.forEach((o, gi) => {
    const gy = top + gi * groupH;
    if (gi % 2 === 1) el.push(`<rect x="0" y="${gy - 4}" width="${width}" height="${groupH}" fill="#f7f7f7" fill-opacity="0.6"/>`);
    el.push(`<text x="10" y="${gy + (ids.length * rowH) / 2 + 4}" font-size="12">${escapeXml(`${o.workload}: ${o.op}`)}</text>`);
    ids.forEach((id, ri) => {
      const s = o.stats[id];
      const xs = o.samples[id] ?? [];
      const cy = gy + ri * rowH + rowH / 2;
      const color = COLORS[ri % COLORS.length]!;
      if (!s) return;
      const errs = o.errors[id]?.count ?? 0;
      el.push(`<text x="${left - 8}" y="${cy + 4}" font-size="10" text-anchor="end" fill="${color}">${escapeXml(`${id} p50 ${fmtMs(s.p50)}${errs ? ` (${errs} err)` : ''}`)}</text>`);
      el.push(`<line x1="${f(x(s.min))}" y1="${cy}" x2="${f(x(s.max))}" y2="${cy}" stroke="${color}" stroke-width="1"/>`);
      el.push(`<rect x="${f(x(s.p25))}" y="${cy - 5}" width="${f(Math.max(1, x(s.p75) - x(s.p25)))}" height="10" fill="${color}" fill-opacity="0.25" stroke="${color}"/>`);
      el.push(`<line x1="${f(x(s.p50))}" y1="${cy - 6}" x2="${f(x(s.p50))}" y2="${cy + 6}" stroke="${color}" stroke-width="3"/>`);
      for (const [p, v] of [['p95', s.p95], ['p99', s.p99]] as const) {
        el.push(`<line x1="${f(x(v))}" y1="${cy - 4}" x2="${f(x(v))}" y2="${cy + 4}" stroke="${color}" stroke-width="1.5"><title>${p} ${fmtMs(v)} ms</title></line>`);
      }
      xs.forEach((v, i) => {
        el.push(`<circle cx="${f(x(v))}" cy="${f(cy + jitter(i) * 3.5)}" r="1.6" fill="${color}" fill-opacity="0.55"/>`);
      });
    });
  });
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">\n` +
    el.join('\n') +
    '\n</svg>\n'
  );
}

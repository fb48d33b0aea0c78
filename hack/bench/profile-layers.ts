// Splits a daemon CPU profile (rpc-floor.ts with RPC_FLOOR_PROF=<dir>) by layer, within the timed
// windows rpc-floor wrote to <dir>/windows.json, per call: the front, node's HTTP/2, grpc-js,
// protobufjs, logging, the handlers... The bundle (dist/cri-mesos.cjs) is one file; its source
// map tells which file a position came from (src/... or node_modules/...).
//
//   tsx hack/bench/profile-layers.ts <dir> [functions to list, default 30]
import { readdirSync, readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { join } from 'node:path';
import { BUNDLE_FILE, projectRoot } from '../../src/util/paths.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** a position in the bundle (0-based, as in a profile) → the file it came from, from its source map */
function bundleModules(file: string): (line: number, column: number) => string {
  const map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')) as SourceMapPayload);
  return (line, column) => {
    const entry = map.findEntry(line, column) as { originalSource?: string };
    return entry.originalSource?.replace(/^(\.\.\/)+/, '') ?? '?';
  };
}

function layer(mod: string | undefined, fn: string, url: string): string {
  if (!url) {
    if (fn.startsWith('(')) return fn; // (idle) (program) (garbage collector)
    if (/^(writev|writeBuffer|writeUtf8String|writeLatin1String|readStart)$/.test(fn)) return 'socket writes (in the syscall)';
    if (/\$(encode|decode|fromObject|toObject)$/.test(fn)) return 'protobufjs';
    return 'native, other';
  }
  if (url.startsWith('node:internal/http2')) return "node's HTTP/2 (JS side of nghttp2)";
  if (url.startsWith('node:internal/js_stream_socket')) return 'front: JSStreamSocket';
  if (url.startsWith('node:internal/streams') || url === 'node:stream') return 'node streams';
  if (url.startsWith('node:')) return 'node, other (events, timers, buffers, net)';
  if (!mod) return 'other';
  if (/protobufjs|long\//.test(mod)) return 'protobufjs';
  if (/@grpc\/proto-loader/.test(mod)) return 'protobufjs';
  if (/@grpc\/grpc-js/.test(mod)) return 'grpc-js';
  if (/winston|logform|triple-beam|readable-stream|@colors|safe-stable|fecha|one-time|@dabh|colorspace|kuler|text-hex|enabled|fn\.name|stack-trace|is-stream|simple-swizzle|color/.test(mod)) return 'logging';
  if (/^src\/log\.ts$/.test(mod)) return 'logging';
  if (/prom-client|tdigest|bintrees|^src\/metrics/.test(mod)) return 'metrics';
  if (/h2front/.test(mod)) return 'front: h2front';
  if (/^src\/cri\/server\.ts$/.test(mod)) return 'RPC wrapper';
  if (/^src\/cri\/(runtime\/|encoded)/.test(mod)) return 'handlers';
  return mod;
}

const dir = process.argv[2];
if (!dir) throw new Error('usage: profile-layers.ts <dir from RPC_FLOOR_PROF> [functions]');
const topFunctions = Number(process.argv[3] ?? 30);
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error(`no .cpuprofile in ${dir}`);
const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
const windows = JSON.parse(readFileSync(join(dir, 'windows.json'), 'utf8')) as { label: string; fromUs: number; toUs: number; calls: number }[];
const moduleOf = bundleModules(join(projectRoot(), BUNDLE_FILE));
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const where = new Map<number, { layer: string; fn: string }>();
for (const n of p.nodes) {
  const { url, functionName, lineNumber, columnNumber } = n.callFrame;
  const mod = url.endsWith('.cjs') ? moduleOf(lineNumber, columnNumber) : url.includes('node_modules') ? url.replace(/^.*node_modules\//, 'node_modules/') : undefined;
  where.set(n.id, { layer: layer(mod, functionName, url), fn: `${functionName || '(anonymous)'} ${mod ?? url}:${lineNumber + 1}` });
}
// sample i lasts until sample i + 1
const at: number[] = [];
let t = p.startTime;
for (const d of p.timeDeltas) at.push((t += d));

const groups = new Map<string, typeof windows>();
for (const w of windows) (groups.get(w.label) ?? groups.set(w.label, []).get(w.label)!).push(w);
for (const [label, ws] of groups) {
  const layers = new Map<string, number>();
  const fns = new Map<string, number>();
  let sampled = 0;
  let calls = 0;
  let wall = 0;
  for (const w of ws) {
    calls += w.calls;
    wall += w.toUs - w.fromUs;
    for (let i = 0; i < at.length - 1; i++) {
      if (at[i]! < w.fromUs || at[i]! > w.toUs) continue;
      const d = Math.min(at[i + 1]!, w.toUs) - at[i]!;
      const x = where.get(byId.get(p.samples[i]!)!.id)!;
      sampled += d;
      layers.set(x.layer, (layers.get(x.layer) ?? 0) + d);
      fns.set(x.fn, (fns.get(x.fn) ?? 0) + d);
    }
  }
  const table = (m: Map<string, number>, k: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([name, us]) => `${(us / calls).toFixed(1).padStart(9)} µs/call ${((100 * us) / sampled).toFixed(1).padStart(5)}%  ${name}`)
      .join('\n');
  console.log(`\n${label}: ${calls} calls, ${(wall / calls).toFixed(0)} µs/call at the client, ${(sampled / calls).toFixed(0)} µs/call sampled in the daemon`);
  console.log(table(layers, 40));
  console.log(`top functions:\n${table(fns, topFunctions)}`);
}

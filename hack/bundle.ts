// npm run build:bundle: the daemon as one file, and the CRI proto as a JSON descriptor.
//
// Why: a restarted daemon must answer its first RPC within a second (issue 8). Loading
// ~400 small module files costs Node about twice what one bundled file does, and parsing
// the .proto text at every start costs more than reading its descriptor. dist/src/ stays
// as tsc builds it (tests and tools import from there); bin/cri-mesos runs the bundle.
import { build } from 'esbuild';
import protobuf from 'protobufjs';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUNDLE_FILE, PROTO_DESCRIPTOR_FILE, PROTO_FILE, projectRoot } from '../src/util/paths.js';

const root = projectRoot();
// CommonJS, not an ES module: src/boot.cts compiles it with V8's code cache, which Node 20 offers
// for scripts only. Every module's import.meta.url is the bundle's, as in an ES module bundle.
// Whitespace and comments out: a third smaller to read and parse, and ASCII only (the comments
// were not), so that it loads as a one-byte string; names stay, for stack traces.
await build({
  entryPoints: [join(root, 'dist', 'src', 'cli.js')],
  outfile: join(root, BUNDLE_FILE),
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: true,
  minifyWhitespace: true,
  minifySyntax: true,
  charset: 'ascii',
  logLevel: 'warning',
  // NODE_ENV production: winston's @dabh/diagnostics then takes its no-op build, and its development
  // build's colour tables (@so-ric/colorspace, color-convert: ~15 ms of every start) leave the bundle.
  // Nothing else bundled reads NODE_ENV.
  define: { 'import.meta.url': '__criMesosBundleUrl', 'process.env.NODE_ENV': '"production"' },
  banner: { js: "var __criMesosBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
});
const nonAscii = readFileSync(join(root, BUNDLE_FILE)).findIndex((b) => b > 0x7f);
if (nonAscii >= 0) throw new Error(`${BUNDLE_FILE}: a non-ASCII byte at offset ${nonAscii}; src/boot.cts counts on a one-byte source string`);
// keepCase as the daemon's PROTO_OPTIONS: the wire names are the .proto's snake_case.
const proto = new protobuf.Root().loadSync(join(root, PROTO_FILE), { keepCase: true });
mkdirSync(join(root, PROTO_DESCRIPTOR_FILE, '..'), { recursive: true });
writeFileSync(join(root, PROTO_DESCRIPTOR_FILE), JSON.stringify(proto.toJSON()));

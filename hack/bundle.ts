// npm run build:bundle: the daemon as one file, and the CRI proto as a JSON descriptor.
//
// Why: a restarted daemon must answer its first RPC within a second (issue 8). Loading
// ~400 small module files costs Node about twice what one bundled file does, and parsing
// the .proto text at every start costs more than reading its descriptor. dist/src/ stays
// as tsc builds it (tests and tools import from there); bin/cri-mesos runs the bundle.
import { build } from 'esbuild';
import protobuf from 'protobufjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUNDLE_FILE, PROTO_DESCRIPTOR_FILE, PROTO_FILE, projectRoot } from '../src/util/paths.js';

const root = projectRoot();
await build({
  entryPoints: [join(root, 'dist', 'src', 'cli.js')],
  outfile: join(root, BUNDLE_FILE),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  // CommonJS dependencies (grpc-js, winston) call require(): give the ES module one.
  banner: { js: "import { createRequire as __criMesosRequire } from 'node:module'; const require = __criMesosRequire(import.meta.url);" },
});
// keepCase as the daemon's PROTO_OPTIONS: the wire names are the .proto's snake_case.
const proto = new protobuf.Root().loadSync(join(root, PROTO_FILE), { keepCase: true });
mkdirSync(join(root, PROTO_DESCRIPTOR_FILE, '..'), { recursive: true });
writeFileSync(join(root, PROTO_DESCRIPTOR_FILE), JSON.stringify(proto.toJSON()));

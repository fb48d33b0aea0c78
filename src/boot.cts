// What bin/cri-mesos runs: the bundle (dist/cri-mesos.cjs), compiled with V8's code cache.
//
// Why: compiling the 1.9 MB bundle took ~85 ms of every start of the daemon and the CLI, on the
// way to a restarted daemon's first answer (issue 15); the cache, written by the build with
// bin/cri-mesos's own node flags (V8 rejects a cache made under other flags), makes it a
// deserialization. A missing or rejected cache only costs that compile: the script runs the same.
// Node 20 has no compile cache of its own for user code (module.enableCompileCache is 22.1+).
//
//   CRI_MESOS_WRITE_CODE_CACHE=1   write the cache when this process exits (the build's warm-up)
//   CRI_MESOS_BOOT_DEBUG=1         say on stderr whether the cache was used
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import Module from 'node:module';
import { join } from 'node:path';
import { Script } from 'node:vm';

const root = join(__dirname, '..', '..');
// The names are paths.ts's BUNDLE_FILE and BUNDLE_CODE_CACHE_FILE (this file cannot import an ES module).
const bundle = join(root, 'dist', 'cri-mesos.cjs');
const cacheFile = join(root, 'dist', 'cri-mesos.cjs.v8cache');

// The bundle is ASCII (hack/bundle.ts), so V8 keeps it as a one-byte string (half the memory of
// the two-byte string the old bundle's non-ASCII comments made); utf8 decodes it fastest here
// (12 ms against latin1's 18 for its 1.9 MB).
const source = readFileSync(bundle, 'utf8').replace(/^#!.*/, '');
let cachedData: Buffer | undefined;
try {
  cachedData = readFileSync(cacheFile);
} catch {
  // not built yet: compile
}
const script = new Script(Module.wrap(source), { filename: bundle, cachedData });
const cache = !cachedData ? 'absent' : script.cachedDataRejected ? 'rejected' : 'used';
if (process.env.CRI_MESOS_BOOT_DEBUG === '1') process.stderr.write(`cri-mesos boot: code cache ${cache}\n`);
if (process.env.CRI_MESOS_WRITE_CODE_CACHE === '1') {
  delete process.env.CRI_MESOS_WRITE_CODE_CACHE;
  // At exit: the cache then also holds the functions that ran (module init, the command).
  process.on('exit', () => {
    writeFileSync(`${cacheFile}.tmp`, script.createCachedData());
    renameSync(`${cacheFile}.tmp`, cacheFile);
  });
}
const wrapper = script.runInThisContext() as (exports: object, require: NodeRequire, module: object, filename: string, dirname: string) => void;
const mod = { exports: {} };
wrapper.call(mod.exports, mod.exports, Module.createRequire(bundle), mod, bundle, join(root, 'dist'));

// bin/cri-mesos runs the bundle through dist/src/boot.cjs with the V8 code cache the build wrote
// (src/boot.cts). The cache must be the one V8 takes under bin/cri-mesos's flags, or every start
// compiles the bundle again; and a cache V8 rejects must cost only that compile.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUNDLE_CODE_CACHE_FILE, BUNDLE_FILE, projectRoot } from '../../src/util/paths.js';

const root = projectRoot();
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;

test('bin/cri-mesos compiles the bundle with the code cache the build wrote', (t) => {
  const r = spawnSync(join(root, 'bin', 'cri-mesos'), ['--version'], { env: { ...process.env, CRI_MESOS_BOOT_DEBUG: '1' }, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout.trim(), version);
  t.regex(r.stderr, /^cri-mesos boot: code cache used$/m);
  t.true(readFileSync(join(root, BUNDLE_CODE_CACHE_FILE)).length > 100_000);
});

test('under other node flags V8 rejects the cache, and the bundle still runs', (t) => {
  const r = spawnSync(process.execPath, ['--max-semi-space-size=2', join(root, 'dist', 'src', 'boot.cjs'), '--version'], {
    env: { ...process.env, CRI_MESOS_BOOT_DEBUG: '1' },
    encoding: 'utf8',
  });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout.trim(), version);
  t.regex(r.stderr, /code cache rejected/);
});

test('the bundle runs as a plain script too (the docker executor runs it that way), and is ASCII', (t) => {
  t.is(execFileSync(process.execPath, [join(root, BUNDLE_FILE), '--version'], { encoding: 'utf8' }).trim(), version);
  t.is(readFileSync(join(root, BUNDLE_FILE)).findIndex((b) => b > 0x7f), -1);
});

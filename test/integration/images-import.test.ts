// Import across processes: a separate process (as `cri-mesos images import`
// would be) writes into the store a long-lived reader is using; two
// processes importing images that share a layer at the same time.
import { useTestImages } from '../helpers/suite.js';
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { buildBusyboxImages, TEST_TAGS, type BuiltTestImages } from '../../hack/build-test-images.js';
import { ImageStore } from '../../src/images/store.js';
import { projectRoot } from '../../src/util/paths.js';

const run = promisify(execFile);
let imgs: BuiltTestImages;
useTestImages((b) => (imgs = b));

async function work(t: ExecutionContext): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'cm-import-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

/** Import `path` into `storeRoot` from a separate Node process. */
async function importInChild(dir: string, storeRoot: string, path: string): Promise<string[]> {
  const script = join(dir, `child-${Math.random().toString(16).slice(2)}.mts`);
  const src = (p: string) => pathToFileURL(join(projectRoot(), p)).href;
  await writeFile(
    script,
    `import { ImageStore } from ${JSON.stringify(src('src/images/store.ts'))};
import { importImage } from ${JSON.stringify(src('src/images/import.ts'))};
const recs = await importImage(new ImageStore(process.argv[2]), process.argv[3]);
console.log(JSON.stringify(recs.map((r) => r.id)));
`,
  );
  const { stdout } = await run(process.execPath, ['--import', 'tsx', script, storeRoot, path], { cwd: projectRoot() });
  return JSON.parse(stdout.trim()) as string[];
}

test('a running reader sees images another process imports, without restart', async (t) => {
  const d = await work(t);
  const root = join(d, 'images');
  const reader = new ImageStore(root);
  t.deepEqual(await reader.list(), []);
  const [id] = await importInChild(d, root, imgs.ociDir);
  t.is((await reader.resolve(TEST_TAGS.oci))?.id, id);
  const [id2] = await importInChild(d, root, imgs.dockerTar);
  t.is((await reader.list()).length, 2);
  t.is((await reader.resolve(TEST_TAGS.docker))?.id, id2);
});

test('concurrent imports in two processes share the base layer and both commit', async (t) => {
  const d = await work(t);
  const root = join(d, 'images');
  const [a, b] = await Promise.all([importInChild(d, root, imgs.ociDir), importInChild(d, root, imgs.layeredDir)]);
  const s = new ImageStore(root);
  t.is((await s.resolve(TEST_TAGS.oci))?.id, a![0]);
  t.is((await s.resolve(TEST_TAGS.layered))?.id, b![0]);
  t.is(readdirSync(s.layersDir).filter((n) => !n.startsWith('.')).length, 2, 'base layer once + top layer');
  t.deepEqual(readdirSync(s.layersDir).filter((n) => n.startsWith('.')), [], 'no temp dirs left');
});

test('hack/build-test-images.ts is a CLI and skips work when up to date', async (t) => {
  const d = await work(t);
  const out = join(d, 'out');
  const first = await run(process.execPath, ['--import', 'tsx', join(projectRoot(), 'hack/build-test-images.ts'), out], { cwd: projectRoot() });
  const paths = JSON.parse(first.stdout) as BuiltTestImages;
  const m1 = statSync(paths.dockerTar).mtimeMs;
  await run(process.execPath, ['--import', 'tsx', join(projectRoot(), 'hack/build-test-images.ts'), out], { cwd: projectRoot() });
  t.is(statSync(paths.dockerTar).mtimeMs, m1, 'second run rebuilt nothing');
  t.true(statSync(join(paths.ociDir, 'index.json')).isFile());
});

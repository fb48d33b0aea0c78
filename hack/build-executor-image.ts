// The image of executor mode A (--docker-mesos-image), built locally: no base image can be
// pulled here. Its rootfs is the host's Node binary with the shared libraries ldd names (and the
// ELF loader), and cri-mesos' built bundle (dist/cri-mesos.cjs) with the package.json that marks
// the project root, the CRI proto and the native addon, all at the same paths as on the host, so
// the daemon's default executor entry ([node, <root>/dist/cri-mesos.cjs]) runs inside it
// unchanged, and so does the daemon itself (docker pods, --launcher posix). `docker import` makes it an
// image; nothing of it is committed.
//
// Usage: npx tsx hack/build-executor-image.ts unix:///path/docker.sock [repo:tag]
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import tar from 'tar-stream';
import { Engine } from '../src/docker/engine.js';
import { PAUSE_BUSYBOX } from '../src/containerizer/docker/containerizer.js';
import { BUNDLE_FILE, PROTO_FILE, projectRoot } from '../src/util/paths.js';

export const EXECUTOR_TEST_IMAGE = { repo: 'cri-mesos.test/executor', tag: 'local' };

/** Every file the image needs: host path → path in the image (the same). */
export function executorImageFiles(node = process.execPath): string[] {
  const root = projectRoot();
  const bundle = join(root, BUNDLE_FILE);
  if (!existsSync(bundle)) throw new Error(`${bundle} is missing: run npm run build first`);
  // The native addon too: the daemon itself can run in this image (docker pods, --launcher posix).
  const addon = join(root, 'addon', 'build', 'Release', 'cri_mesos_native.node');
  // And the static busybox the daemon makes its pause image of (docker import), when the host has it.
  const extra = [addon, PAUSE_BUSYBOX].filter((f) => existsSync(f));
  const files = new Set<string>([node, bundle, join(root, 'package.json'), join(root, PROTO_FILE), ...extra]);
  // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
  for (const elf of [node, ...(existsSync(addon) ? [addon] : [])]) {
    for (const line of execFileSync('ldd', [elf], { encoding: 'utf8' }).split('\n')) {
      const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
      if (m) files.add(m[1]!);
    }
  }
  return [...files];
}

/** The rootfs tar: the files (their contents, symlinks followed) and the dirs a container needs. */
export async function executorImageTar(node = process.execPath): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  const dirs = new Set<string>(['proc', 'dev', 'sys', 'tmp', 'etc']);
  const files = executorImageFiles(node);
  for (const f of files) for (let d = dirname(f); d !== '/'; d = dirname(d)) dirs.add(d.slice(1));
  for (const d of [...dirs].sort()) pack.entry({ name: d, type: 'directory', mode: d === 'tmp' ? 0o1777 : 0o755 });
  for (const f of files) {
    const data = readFileSync(realpathSync(f));
    pack.entry({ name: f.slice(1), mode: statSync(f).mode & 0o7777, size: data.length }, data);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Imports the image into the Engine at `host`; its reference. */
export async function buildExecutorImage(host: string, ref = `${EXECUTOR_TEST_IMAGE.repo}:${EXECUTOR_TEST_IMAGE.tag}`): Promise<string> {
  const colon = ref.lastIndexOf(':');
  const [repo, tag] = colon > ref.lastIndexOf('/') ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
  await new Engine(host).importRootfs(await executorImageTar(), repo, tag);
  return `${repo}:${tag}`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [host, ref] = process.argv.slice(2);
  if (!host) {
    process.stderr.write('usage: build-executor-image.ts unix:///path/docker.sock [repo:tag]\n');
    process.exit(2);
  }
  process.stdout.write(`${await buildExecutorImage(host, ref)}\n`);
}

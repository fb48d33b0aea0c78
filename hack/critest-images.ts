// Stand-ins for the images that critest (kubernetes-sigs/cri-tools 1.29) pulls,
// built from Debian's busybox-static, served by a loopback registry so that
// critest can run on a machine without internet access.
//
// critest pulls upstream names (registry.k8s.io/e2e-test-images/...,
// gcr.io/k8s-staging-cri-tools/...). The registry here holds the same
// repositories without the host part; the printed [registry] config makes
// cri-mesos pull both hosts from it (mirror endpoints have no path prefix, so
// registry.k8s.io/e2e-test-images/busybox:1.29-2 is fetched as
// http://127.0.0.1:PORT/v2/e2e-test-images/busybox/manifests/1.29-2).
//
// Each stand-in does what the specs in cri-tools' pkg/validate check, not
// more: see IMAGES below. What they cannot match:
//   - test-image-digest@sha256:9700f9a2...: a digest names exact upstream
//     bytes, so "public image with digest" cannot pass against stand-ins;
//   - Debian's busybox-static is built with FEATURE_SH_STANDALONE, so `sh -c ls`
//     runs the ls applet in-process and never execs /bin/ls, and "runtime should
//     support MaskedPaths" (masks /bin/ls, expects "/bin/sh: ls: Permission
//     denied") cannot pass with it. So the base is Debian's dynamically linked
//     busybox package (built without it, as the upstream image's busybox is),
//     fetched with `apt-get download` into .test-tmp and unpacked, never
//     installed (it conflicts with busybox-static), with the host's libc beside
//     it; where apt cannot fetch it, busybox-static, and that spec fails;
//   - the images are amd64 only (nonewprivs' setuid helper is x86-64 code).
//
// Usage (as any user; the registry listens on 127.0.0.1 only):
//   npx tsx hack/critest-images.ts [--port N] [--storage DIR] [--config-out FILE]
// builds the images, starts Debian's docker-registry, pushes them, prints the
// cri-mesos config (and writes it to FILE), and serves until Ctrl-C/SIGTERM,
// then stops the registry and removes its temp dir (DIR, when given, is kept
// and reused: pushing again skips the blobs it already has).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { arch } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { BUSYBOX, busyboxLayer, buildImageBlobs, makeTar, type TarEntrySpec } from './build-test-images.js';
import { REGISTRY_BIN, TestRegistry } from '../test/helpers/registry.js';
import { projectRoot } from '../src/util/paths.js';

export const UPSTREAM_HOSTS = ['registry.k8s.io', 'gcr.io'] as const;
const E2E = 'e2e-test-images';
const CRI_TOOLS = 'k8s-staging-cri-tools';

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// /etc/passwd and /etc/group of the Docker busybox images (www-data is uid 33,
// which test-image-user-username relies on; nobody for RunAsUserName).
const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/bin/false',
  'bin:x:2:2:bin:/bin:/bin/false',
  'sys:x:3:3:sys:/dev:/bin/false',
  'sync:x:4:100:sync:/bin:/bin/sync',
  'mail:x:8:8:mail:/var/spool/mail:/bin/false',
  'www-data:x:33:33:www-data:/var/www:/bin/false',
  'operator:x:37:37:Operator:/var:/bin/false',
  'nobody:x:65534:65534:nobody:/home:/bin/false',
];
const GROUP = [
  'root:x:0:',
  'daemon:x:1:',
  'bin:x:2:',
  'sys:x:3:',
  'adm:x:4:',
  'tty:x:5:',
  'disk:x:6:',
  'lp:x:7:',
  'mail:x:8:',
  'kmem:x:9:',
  'wheel:x:10:root',
  'cdrom:x:11:',
  'dialout:x:18:',
  'floppy:x:19:',
  'video:x:28:',
  'audio:x:29:',
  'tape:x:32:',
  'www-data:x:33:',
  'operator:x:37:',
  'utmp:x:43:',
  'plugdev:x:46:',
  'staff:x:50:',
  'lock:x:54:',
  'netdev:x:82:',
  'users:x:100:',
  'nogroup:x:65534:',
];
const lines = (l: string[]) => l.join('\n') + '\n';

// Debian's busybox-static has no ipcs and no pgrep applet; the specs run
// `ipcs -m` (HostIpc) and `sh -c "pgrep sleep || true"` (execSync with timeout).
const IPCS = `#!/bin/sh
# Stand-in for util-linux ipcs -m (this busybox has no ipcs): the System V
# shared memory segments of this IPC namespace, from /proc/sysvipc/shm.
case "$*" in
  ""|-m) ;;
  *) echo "ipcs: this stand-in only supports -m" >&2; exit 1 ;;
esac
echo
echo "------ Shared Memory Segments --------"
echo "key        shmid      owner      perms      bytes      nattch     status"
awk 'NR > 1 { k = $1; if (k < 0) k += 4294967296; printf "0x%08x %-10s %-10s %-10s %-10s %-10s\\n", k, $2, $8, $3, $4, $7 }' /proc/sysvipc/shm
echo
`;
const PGREP = `#!/bin/sh
# Stand-in for pgrep PATTERN (this busybox has none): the PIDs of processes
# whose name (/proc/PID/comm) matches the extended regular expression.
[ $# -eq 1 ] || { echo "usage: pgrep PATTERN" >&2; exit 2; }
rc=1
for d in /proc/[0-9]*; do
  pid=\${d#/proc/}
  [ "$pid" = "$$" ] && continue
  comm=$(cat "$d/comm" 2>/dev/null) || continue
  if echo "$comm" | grep -Eq -- "$1"; then echo "$pid"; rc=0; fi
done
exit $rc
`;

/**
 * A web server in the foreground under a shell that stays PID 1, as nginx's
 * master process does: it re-execs itself with "master process" in its
 * arguments (so /proc/1/cmdline holds "master process", which the ContainerPID
 * spec greps for), writes its PID to /var/run/nginx.pid (the HostPID spec reads
 * it and looks for it with `pidof nginx`: the script's process name is nginx),
 * runs busybox httpd as a child and stops it on SIGTERM/SIGINT/SIGQUIT.
 */
function nginxScript(port: number): string {
  return `#!/bin/sh
# Stand-in for nginx (cri-mesos hack/critest-images.ts): busybox httpd on port ${port}.
[ "$1" = "master process" ] || exec "$0" "master process" "$@"
echo $$ > /var/run/nginx.pid
httpd -f -p ${port} -h /usr/share/nginx/html &
child=$!
trap 'kill $child 2>/dev/null; wait $child; rm -f /var/run/nginx.pid; exit 0' TERM INT QUIT
wait $child
`;
}

const NGINX_INDEX = '<!DOCTYPE html>\n<html>\n<head><title>Welcome to nginx!</title></head>\n<body><h1>Welcome to nginx!</h1><p>(busybox httpd standing in for nginx)</p></body>\n</html>\n';

/** Apache's httpd-foreground: the spec looks for "httpd -D FOREGROUND" in the container log. */
const HTTPD_FOREGROUND = `#!/bin/sh
# Stand-in for Apache httpd's httpd-foreground (cri-mesos hack/critest-images.ts): busybox httpd on port 80.
echo "[mpm_event:notice] AH00489: Apache/2.4.39 (Unix) stand-in (busybox httpd) configured -- resuming normal operations" >&2
echo "[core:notice] AH00094: Command line: 'httpd -D FOREGROUND'" >&2
httpd -f -p 80 -h /usr/local/apache2/htdocs &
child=$!
trap 'kill $child 2>/dev/null; wait $child; exit 0' TERM INT QUIT
wait $child
`;

/**
 * The nonewprivs image's /usr/local/bin/nnp: print "Effective uid: N\n" with
 * N = geteuid(), exit 0. Installed setuid root and run as uid 1000, it prints 0
 * unless no_new_privs keeps exec from honouring the setuid bit. Busybox cannot
 * stand in (it drops setuid privileges for id, or dies when it cannot regain
 * them), so this is a 104-byte static x86-64 program in a hand-made ELF:
 *
 *     mov eax, 107 ; syscall            geteuid()
 *     mov r9, rsp ; lea rdi, [rsp-1]    build the message backwards below rsp
 *     mov byte [rdi], 10 ; mov ecx, 10
 *  1: xor edx, edx ; div ecx ; add dl, '0' ; dec rdi ; mov [rdi], dl
 *     test eax, eax ; jnz 1b            decimal digits
 *     lea rsi, [rip+prefix] ; mov ecx, 15 ; sub rdi, rcx ; mov r8, rdi
 *     rep movsb                         "Effective uid: " before them
 *     mov rsi, r8 ; mov rdx, r9 ; sub rdx, rsi ; mov edi, 1 ; mov eax, 1 ; syscall    write(1, ...)
 *     xor edi, edi ; mov eax, 60 ; syscall                                           exit(0)
 *  prefix: .ascii "Effective uid: "
 */
const NNP_CODE = Buffer.from(
  'b86b0000000f054989e1488d7c24ffc6070ab90a00000031d2f7f180c23048ffcf881785c075f0' +
    '488d352b000000b90f0000004829cf4989f8f3a44c89c64c89ca4829f2bf01000000b801000000' +
    '0f0531ffb83c0000000f05' +
    Buffer.from('Effective uid: ').toString('hex'),
  'hex',
);

/** A static ELF64 x86-64 executable: one R+X PT_LOAD of the whole file, a non-executable stack. */
export function nnpElf(): Buffer {
  const base = 0x400000;
  const ehsize = 64;
  const phentsize = 56;
  const phnum = 2;
  const codeOff = ehsize + phentsize * phnum;
  const size = codeOff + NNP_CODE.length;
  const b = Buffer.alloc(size);
  b.write('\x7fELF', 0, 'latin1');
  b[4] = 2; // ELFCLASS64
  b[5] = 1; // little endian
  b[6] = 1; // EV_CURRENT
  b.writeUInt16LE(2, 16); // ET_EXEC
  b.writeUInt16LE(0x3e, 18); // EM_X86_64
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(BigInt(base + codeOff), 24); // e_entry
  b.writeBigUInt64LE(BigInt(ehsize), 32); // e_phoff
  b.writeBigUInt64LE(0n, 40); // e_shoff
  b.writeUInt32LE(0, 48);
  b.writeUInt16LE(ehsize, 52);
  b.writeUInt16LE(phentsize, 54);
  b.writeUInt16LE(phnum, 56);
  b.writeUInt16LE(64, 58); // e_shentsize
  b.writeUInt16LE(0, 60); // e_shnum
  b.writeUInt16LE(0, 62);
  const ph = (i: number, type: number, flags: number, off: number, vaddr: number, filesz: number, align: number) => {
    const o = ehsize + i * phentsize;
    b.writeUInt32LE(type, o);
    b.writeUInt32LE(flags, o + 4);
    b.writeBigUInt64LE(BigInt(off), o + 8);
    b.writeBigUInt64LE(BigInt(vaddr), o + 16);
    b.writeBigUInt64LE(BigInt(vaddr), o + 24);
    b.writeBigUInt64LE(BigInt(filesz), o + 32);
    b.writeBigUInt64LE(BigInt(filesz), o + 40);
    b.writeBigUInt64LE(BigInt(align), o + 48);
  };
  ph(0, 1, 5, 0, base, size, 0x1000); // PT_LOAD, R+X
  ph(1, 0x6474e551, 6, 0, 0, 0, 16); // PT_GNU_STACK, RW
  NNP_CODE.copy(b, codeOff);
  return b;
}

export interface StandIn {
  /** repository in the registry: the upstream name without its host */
  repo: string;
  tags: string[];
  /** the upstream host critest names it with */
  host: (typeof UPSTREAM_HOSTS)[number];
  /** layers above the busybox base and the shared critest layer */
  layers: TarEntrySpec[][];
  config: Record<string, unknown>;
  /** what it is for (printed) */
  about: string;
}

const dirs = (...names: string[]): TarEntrySpec[] => names.map((name) => ({ name, type: 'directory' }));

function nginxLayer(port: number): TarEntrySpec[] {
  return [
    ...dirs('usr/', 'usr/sbin/', 'usr/share/', 'usr/share/nginx/', 'usr/share/nginx/html/', 'var/', 'var/run/'),
    { name: 'usr/sbin/nginx', content: nginxScript(port), mode: 0o755 },
    { name: 'usr/share/nginx/html/index.html', content: NGINX_INDEX },
  ];
}

/** An image of cri-tools' images/image-test: busybox plus an empty file /NAME (ADD ${TEST} ${TEST}). */
const imageTest = (repo: string, tags: string[], file: string, about: string): StandIn => ({
  repo: `${CRI_TOOLS}/${repo}`,
  tags,
  host: 'gcr.io',
  layers: [[{ name: file, content: '' }]],
  config: { Env: [PATH_ENV], Cmd: ['sh'] },
  about,
});

/** cri-tools' images/image-user: busybox with USER set. */
const imageUser = (repo: string, user: string): StandIn => ({
  repo: `${CRI_TOOLS}/${repo}`,
  tags: ['latest'],
  host: 'gcr.io',
  layers: [],
  config: { Env: [PATH_ENV], Cmd: ['sh'], User: user },
  about: `USER ${user}`,
});

export function goArch(): string {
  const a = arch();
  return a === 'x64' ? 'amd64' : a;
}

export const IMAGES: StandIn[] = [
  {
    repo: `${E2E}/busybox`,
    tags: ['1.29-2'],
    host: 'registry.k8s.io',
    layers: [],
    config: { Env: [PATH_ENV], Cmd: ['sh'] },
    about: 'the default test image',
  },
  {
    repo: `${E2E}/nginx`,
    tags: ['1.14-2'],
    host: 'registry.k8s.io',
    layers: [nginxLayer(80)],
    config: { Env: [PATH_ENV], Cmd: ['nginx', '-g', 'daemon off;'], ExposedPorts: { '80/tcp': {} }, StopSignal: 'SIGTERM' },
    about: 'HTTP on :80; PID 1 cmdline has "master process"; /var/run/nginx.pid',
  },
  {
    repo: `${E2E}/httpd`,
    tags: ['2.4.39-4'],
    host: 'registry.k8s.io',
    layers: [
      [
        ...dirs('usr/', 'usr/local/', 'usr/local/bin/', 'usr/local/apache2/', 'usr/local/apache2/htdocs/'),
        { name: 'usr/local/bin/httpd-foreground', content: HTTPD_FOREGROUND, mode: 0o755 },
        { name: 'usr/local/apache2/htdocs/index.html', content: '<html><body><h1>It works!</h1></body></html>\n' },
      ],
    ],
    config: {
      Env: ['PATH=/usr/local/apache2/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HTTPD_PREFIX=/usr/local/apache2'],
      Cmd: ['httpd-foreground'],
      WorkingDir: '/usr/local/apache2',
      ExposedPorts: { '80/tcp': {} },
      StopSignal: 'SIGWINCH',
    },
    about: 'HTTP on :80; logs "httpd -D FOREGROUND"',
  },
  {
    repo: `${E2E}/nonewprivs`,
    tags: ['1.3'],
    host: 'registry.k8s.io',
    layers: [
      [
        ...dirs('usr/', 'usr/local/', 'usr/local/bin/'),
        { name: 'usr/local/bin/nnp', content: nnpElf(), mode: 0o4755, uid: 0, gid: 0 },
      ],
    ],
    config: { Env: [PATH_ENV], Cmd: ['/usr/local/bin/nnp'], User: '1000' },
    about: 'setuid-root /usr/local/bin/nnp prints "Effective uid: N"',
  },
  {
    repo: `${CRI_TOOLS}/hostnet-nginx-${goArch()}`,
    tags: ['latest'],
    host: 'gcr.io',
    layers: [nginxLayer(12003)],
    config: { Env: [PATH_ENV], Cmd: ['nginx', '-g', 'daemon off;'], ExposedPorts: { '12003/tcp': {} }, StopSignal: 'SIGTERM' },
    about: 'nginx stand-in on :12003',
  },
  imageUser('test-image-user-uid', '1002'),
  imageUser('test-image-user-username', 'www-data'),
  imageUser('test-image-user-uid-group', '1003:1004'),
  imageUser('test-image-user-username-group', 'www-data:1004'),
  {
    repo: `${CRI_TOOLS}/test-image-predefined-group`,
    tags: ['latest'],
    host: 'gcr.io',
    layers: [
      [
        ...dirs('etc/', 'home/'),
        { name: 'home/default-user/', type: 'directory', uid: 1000, gid: 1000 },
        { name: 'etc/passwd', content: lines([...PASSWD, 'default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh']) },
        { name: 'etc/group', content: lines([...GROUP, 'default-user:x:1000:', 'group-defined-in-image:x:50000:default-user']) },
      ],
    ],
    config: { Env: [PATH_ENV], Cmd: ['sh'], User: '1000' },
    about: 'USER 1000 (default-user), also in group-defined-in-image (50000)',
  },
  imageTest('test-image-latest', ['latest'], 'test-image-latest', 'pulled without a tag'),
  imageTest('test-image-1', ['latest'], 'test-image-1', 'three different images (1/3)'),
  imageTest('test-image-2', ['latest'], 'test-image-2', 'three different images (2/3)'),
  imageTest('test-image-3', ['latest'], 'test-image-3', 'three different images (3/3)'),
  imageTest('test-image-tags', ['1', '2', '3'], 'same-image', 'one image, three tags'),
  imageTest('test-image-tag', ['test'], 'test', 'pulled by tag'),
  imageTest('test-image-tag', ['all'], 'all', 'status by every kind of reference'),
  // critest pulls it by upstream digest, which no stand-in can have; pushed by tag for completeness.
  imageTest('test-image-digest', ['latest'], 'test-image-digest', 'upstream pulls it by a digest no stand-in can match'),
];

/** The layer every stand-in has above busybox: Docker busybox's passwd/group, ipcs and pgrep. */
function critestBaseLayer(): Promise<Buffer> {
  return makeTar([
    ...dirs('etc/', 'bin/', 'var/', 'var/www/', 'var/spool/', 'var/spool/mail/'),
    { name: 'etc/passwd', content: lines(PASSWD) },
    { name: 'etc/group', content: lines(GROUP) },
    { name: 'bin/ipcs', content: IPCS, mode: 0o755 },
    { name: 'bin/pgrep', content: PGREP, mode: 0o755 },
  ]);
}

export interface BuiltStandIn {
  image: StandIn;
  blobs: { digest: string; data: Buffer }[];
  manifest: Buffer;
  manifestDigest: string;
}

/**
 * Debian's dynamically linked busybox (package `busybox`), unpacked under `cacheDir`, and a layer
 * with the shared libraries it needs, copied from this host (ldd). Undefined, with the reason
 * printed, when apt cannot fetch it.
 */
export function dynamicBusybox(cacheDir: string): { busybox: string; libs: TarEntrySpec[] } | undefined {
  const busybox = join(cacheDir, 'root', 'bin', 'busybox');
  try {
    if (!existsSync(busybox)) {
      rmSync(cacheDir, { recursive: true, force: true });
      mkdirSync(cacheDir, { recursive: true });
      execFileSync('apt-get', ['download', 'busybox'], { cwd: cacheDir, stdio: ['ignore', 'ignore', 'pipe'] });
      const deb = readdirSync(cacheDir).find((f) => f.endsWith('.deb'));
      if (!deb) throw new Error('apt-get download busybox left no .deb');
      execFileSync('dpkg-deb', ['-x', join(cacheDir, deb), join(cacheDir, 'root')]);
    }
    const libs: TarEntrySpec[] = [];
    const seenDirs = new Set<string>();
    for (const line of execFileSync('ldd', [busybox], { encoding: 'utf8' }).split('\n')) {
      // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
      const path = /=>\s*(\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+)\s+\(/.exec(line)?.[1];
      if (!path) continue;
      const parts = path.slice(1).split('/');
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join('/') + '/';
        if (!seenDirs.has(dir)) libs.push({ name: dir, type: 'directory', mode: 0o755 });
        seenDirs.add(dir);
      }
      libs.push({ name: path.slice(1), content: readFileSync(realpathSync(path)), mode: 0o755 });
    }
    return { busybox, libs };
  } catch (e) {
    console.error(`Debian's dynamic busybox is not available (${e instanceof Error ? e.message : String(e)}); using ${BUSYBOX}: the MaskedPaths spec will fail`);
    return undefined;
  }
}

export async function buildStandIns(busybox = BUSYBOX, cacheDir = join(projectRoot(), '.test-tmp', 'critest-busybox')): Promise<BuiltStandIn[]> {
  if (arch() !== 'x64') throw new Error(`the critest stand-ins are amd64 only (nonewprivs has x86-64 code); this is ${arch()}`);
  const dyn = dynamicBusybox(cacheDir);
  const base = dyn
    ? [await busyboxLayer(dyn.busybox, { hardlinks: true }), await makeTar(dyn.libs), await critestBaseLayer()]
    : [await busyboxLayer(busybox, { hardlinks: true }), await critestBaseLayer()];
  const out: BuiltStandIn[] = [];
  for (const image of IMAGES) {
    const layers = [...base];
    for (const l of image.layers) layers.push(await makeTar(l));
    const b = buildImageBlobs({ tags: [], layers, config: image.config });
    out.push({ image, blobs: b.blobs.filter((x) => x.digest !== b.manifestDigest), manifest: b.manifest, manifestDigest: b.manifestDigest });
  }
  return out;
}

export async function pushStandIns(reg: TestRegistry, built: BuiltStandIn[]): Promise<void> {
  for (const { image, blobs, manifest } of built) {
    for (const blob of blobs) await reg.pushBlob(image.repo, blob);
    for (const tag of image.tags) await reg.pushManifest(image.repo, tag, manifest, 'application/vnd.oci.image.manifest.v1+json');
  }
}

/** The cri-mesos config that pulls registry.k8s.io and gcr.io from `endpoint` only. */
export function registryConfigToml(endpoint: string): string {
  const mirrors = UPSTREAM_HOSTS.map((h) => `"${h}" = ["${endpoint}"]`).join(', ');
  return `# critest stand-in images (hack/critest-images.ts)\n[registry]\nmirrors = { ${mirrors} }\nfallback_to_upstream = false\n`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      storage: { type: 'string' },
      'config-out': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log('usage: npx tsx hack/critest-images.ts [--port N] [--storage DIR] [--config-out FILE]');
    return;
  }
  if (!existsSync(REGISTRY_BIN)) throw new Error(`${REGISTRY_BIN} is missing: install Debian's docker-registry (apt-get install -y docker-registry)`);
  const port = values.port === undefined ? undefined : Number(values.port);
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) throw new Error(`--port: "${values.port}" is not a port`);

  const built = await buildStandIns();
  const reg = await TestRegistry.start({ port, storageDir: values.storage === undefined ? undefined : resolve(values.storage) });
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    await reg.stop();
    process.exit(code);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void stop(0));
  try {
    await pushStandIns(reg, built);
    reg.proc?.once('exit', (code, signal) => {
      if (stopping) return;
      console.error(`docker-registry exited (${signal ?? code}):\n${reg.logs()}`);
      void stop(1);
    });
    const toml = registryConfigToml(`http://${reg.host}`);
    if (values['config-out']) await writeFile(values['config-out'], toml);
    for (const b of built) {
      for (const t of b.image.tags) console.error(`  ${b.image.host}/${b.image.repo}:${t}  ${b.manifestDigest.slice(0, 19)}  ${b.image.about}`);
    }
    console.error(`registry on http://${reg.host}${values.storage ? ` (storage ${resolve(values.storage)})` : ''}; Ctrl-C stops it.`);
    if (values['config-out']) console.error(`config written to ${values['config-out']}:`);
    console.log(toml);
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    await stop(1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}

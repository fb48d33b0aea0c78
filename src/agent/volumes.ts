// The pod's volumes on the node and the mounts they become in CreateContainer, as the kubelet's
// volume plugins (pkg/volume/hostpath, pkg/volume/emptydir) and makeMounts (kubelet_pods.go):
// hostPath with its type check, emptyDir as a directory in the pod's dir (a tmpfs for medium
// Memory, sized as the kubelet sizes it), subPath, read-only mounts, mount propagation.
// Sources that come from an API server cannot be had here: the pod stays Pending with a clear
// message, as a pod whose Secret is missing does under a kubelet.
import { execFile } from 'node:child_process';
import { chmodSync, closeSync, existsSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Mount } from '../../api/generated/runtime/v1/Mount.js';
import { agentEmptyDir, agentPodDir } from '../paths.js';
import { mkdirp } from '../util/mkdirp.js';
import { parseMountInfoEntries } from '../util/mountinfo.js';
import { Quantity, quantityOf } from './quantity.js';
import { podResourceList } from './resources.js';
import type { Container, Pod, Volume } from './types.js';
import { LOCAL_VOLUME_SOURCES } from './validate.js';

const run = promisify(execFile);

export class VolumeError extends Error {}

/** The host path of each of the pod's volumes, by name. */
export type PodVolumePaths = Map<string, string>;

/**
 * Makes the pod's volumes ready (idempotent: a resync finds them ready). Throws VolumeError, naming
 * the volume, for a failed type check or a source that needs an API server.
 */
export async function setUpVolumes(pod: Pod, root: string, nodeMemory: number): Promise<PodVolumePaths> {
  const paths: PodVolumePaths = new Map();
  for (const v of pod.spec.volumes ?? []) {
    const source = Object.keys(v).find((k) => k !== 'name') ?? '';
    if (!LOCAL_VOLUME_SOURCES.includes(source)) {
      throw new VolumeError(`MountVolume.SetUp failed for volume "${v.name}": ${source} volumes need an API server; the standalone agent can mount only hostPath and emptyDir volumes`);
    }
    if (v.hostPath) paths.set(v.name, checkHostPath(v));
    else paths.set(v.name, await setUpEmptyDir(pod, v, root, nodeMemory));
  }
  return paths;
}

/** hostPath's type check (pkg/volume/hostpath checkType): creates for *OrCreate, else checks. */
export function checkHostPath(v: Volume): string {
  const { path, type = '' } = v.hostPath!;
  const fail = (what: string) => new VolumeError(`MountVolume.SetUp failed for volume "${v.name}": hostPath type check failed: ${path} ${what}`);
  const st = statSync(path, { throwIfNoEntry: false });
  switch (type) {
    case 'DirectoryOrCreate':
      if (!st) {
        mkdirp(path, 0o755);
        return path;
      }
      if (!st.isDirectory()) throw fail('is not a directory');
      break;
    case 'Directory':
      if (!st?.isDirectory()) throw fail(st ? 'is not a directory' : 'does not exist');
      break;
    case 'FileOrCreate':
      if (!st) {
        try {
          closeSync(openSync(path, 'a', 0o644));
        } catch (err) {
          throw fail(`cannot be created: ${(err as Error).message}`);
        }
        return path;
      }
      if (!st.isFile()) throw fail('is not a file');
      break;
    case 'File':
      if (!st?.isFile()) throw fail(st ? 'is not a file' : 'does not exist');
      break;
    case 'Socket':
      if (!st?.isSocket()) throw fail('is not a socket file');
      break;
    case 'CharDevice':
      if (!st?.isCharacterDevice()) throw fail('is not a character device');
      break;
    case 'BlockDevice':
      if (!st?.isBlockDevice()) throw fail('is not a block device');
      break;
  }
  return path;
}

async function setUpEmptyDir(pod: Pod, v: Volume, root: string, nodeMemory: number): Promise<string> {
  const dir = agentEmptyDir(root, pod.metadata.uid, v.name);
  mkdirp(dir, 0o750);
  if (v.emptyDir?.medium === 'Memory') {
    if (!isMountPoint(dir)) {
      const size = emptyDirMemorySize(pod, v, nodeMemory);
      try {
        await run('mount', ['-t', 'tmpfs', '-o', size > 0 ? `size=${size}` : 'defaults', 'tmpfs', dir]);
      } catch (err) {
        throw new VolumeError(`MountVolume.SetUp failed for volume "${v.name}": mount tmpfs: ${((err as { stderr?: string }).stderr || (err as Error).message).trim()}`);
      }
    }
  }
  // As the kubelet: world-writable, so that any user in the pod can write it.
  chmodSync(dir, 0o777);
  return dir;
}

/**
 * The tmpfs size of a Memory emptyDir (calculateEmptyDirMemorySize): the node's memory, or the
 * pod's memory limit when every container has one, or the volume's sizeLimit, whichever is least.
 */
export function emptyDirMemorySize(pod: Pod, v: Volume, nodeMemory: number): number {
  let size = Quantity.parse(nodeMemory);
  if (pod.spec.containers.every((c) => quantityOf(c.resources?.limits, 'memory') !== undefined)) {
    const podLimit = podResourceList(pod, 'limits').get('memory');
    if (podLimit && podLimit.sign() > 0 && podLimit.cmp(size) <= 0) size = podLimit;
  }
  const limit = v.emptyDir?.sizeLimit !== undefined ? Quantity.parse(v.emptyDir.sizeLimit) : undefined;
  if (limit && limit.sign() > 0 && limit.cmp(size) <= 0) size = limit;
  return size.value();
}

function mountPointsUnder(dir: string): string[] {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  return parseMountInfoEntries(text)
    .map((m) => m.mountPoint)
    .filter((m) => m === dir || m.startsWith(dir + '/'));
}

function isMountPoint(dir: string): boolean {
  return mountPointsUnder(dir).includes(dir);
}

/** Unmounts whatever is mounted in the pod's dir (its tmpfs emptyDirs) and removes the dir. */
export async function tearDownPodDir(root: string, uid: string): Promise<void> {
  const dir = agentPodDir(root, uid);
  if (!existsSync(dir)) return;
  for (const m of mountPointsUnder(dir).sort((a, b) => b.length - a.length)) {
    try {
      await run('umount', [m]);
    } catch {
      await run('umount', ['-l', m]).catch(() => undefined);
    }
  }
  rmSync(dir, { recursive: true, force: true });
}

const PROPAGATION: Record<string, Mount['propagation']> = {
  None: 'PROPAGATION_PRIVATE',
  HostToContainer: 'PROPAGATION_HOST_TO_CONTAINER',
  Bidirectional: 'PROPAGATION_BIDIRECTIONAL',
};

/** The container's volumeMounts as CRI mounts; a subPath that does not exist is created. */
export function containerMounts(container: Container, volumes: PodVolumePaths): Mount[] {
  return (container.volumeMounts ?? []).map((m) => {
    let hostPath = volumes.get(m.name)!;
    if (m.subPath) {
      hostPath = join(hostPath, m.subPath);
      if (!existsSync(hostPath)) mkdirp(hostPath, 0o750);
    }
    return {
      container_path: m.mountPath,
      host_path: hostPath,
      readonly: m.readOnly ?? false,
      selinux_relabel: false,
      propagation: PROPAGATION[m.mountPropagation ?? 'None'],
    };
  });
}

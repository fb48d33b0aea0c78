import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The directory holding package.json: works from src/ (tsx) and from dist/src/ (built). */
export function projectRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the cri-mesos package root');
    dir = up;
  }
  root = dir;
  return root;
}

// Files of the package itself, relative to projectRoot().
/** The CRI wire contract. */
export const PROTO_FILE = 'api/runtime-v1.proto';
/** PROTO_FILE as a protobufjs JSON descriptor, written by the build (hack/bundle.ts): faster to load. */
export const PROTO_DESCRIPTOR_FILE = 'dist/api/runtime-v1.json';
/** The daemon and CLI as one bundled CommonJS script (hack/bundle.ts); `node` runs it as is. */
export const BUNDLE_FILE = 'dist/cri-mesos.cjs';
/** V8's code cache for BUNDLE_FILE, written by the build (src/boot.cts reads it). */
export const BUNDLE_CODE_CACHE_FILE = 'dist/cri-mesos.cjs.v8cache';

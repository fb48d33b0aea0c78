import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * mkdir -p that always ends: Node's recursive mkdirSync spins forever on
 * paths whose parent exists but refuses children with ENOENT (e.g. /proc/self/x).
 */
export function mkdirp(path: string, mode = 0o755): void {
  try {
    mkdirSync(path, { mode });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || dirname(path) === path) throw err;
    mkdirp(dirname(path), mode);
    mkdirSync(path, { mode });
  }
}

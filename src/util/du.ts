import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Bytes (allocated blocks) and inodes used under `dir`, not crossing into other files systems' mounts. */
export async function diskUsage(dir: string): Promise<{ bytes: number; inodes: number } | undefined> {
  let root;
  try {
    root = await lstat(dir);
  } catch {
    return undefined;
  }
  let bytes = 0;
  let inodes = 0;
  const seen = new Set<number>();
  const walk = async (path: string, st: Awaited<ReturnType<typeof lstat>>): Promise<void> => {
    if (st.dev !== root.dev) return;
    inodes++;
    if (!seen.has(Number(st.ino))) {
      seen.add(Number(st.ino));
      bytes += Number(st.blocks) * 512;
    }
    if (!st.isDirectory()) return;
    let names: string[] = [];
    try {
      names = await readdir(path);
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(path, name);
      try {
        await walk(p, await lstat(p));
      } catch {
        // vanished meanwhile
      }
    }
  };
  await walk(dir, root);
  return { bytes, inodes };
}

import { readdirSync } from 'node:fs';
import { isAbsent } from '../errors.js';

/** Entries of a directory; a missing one has none (only ENOENT means absent: any other error is thrown). */
export function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (err) {
    if (isAbsent(err)) return [];
    throw err;
  }
}

// Checkpoints that cannot be read are moved aside, never deleted, and the
// containers they describe are left alone: recovery fails safe. Each is logged
// once and shown in Status until an operator deals with it.
import { mkdirSync, renameSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Logger } from '../log.js';

export interface QuarantinedFile {
  /** Where it was. */
  from: string;
  /** Where it is now ('' when even moving it failed; it is then left where it was). */
  to: string;
  error: string;
}

export class Quarantine {
  private readonly files: QuarantinedFile[] = [];

  constructor(
    private readonly dir: string,
    private readonly log: Logger,
  ) {}

  /** Move `path` into the quarantine dir under a name that says where it came from. */
  add(path: string, err: unknown, what: string): void {
    const error = err instanceof Error ? err.message : String(err);
    let to = '';
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      to = join(this.dir, `${Date.now()}-${what}-${basename(path)}`);
      renameSync(path, to);
    } catch (moveErr) {
      this.log.error('cannot move an unreadable checkpoint aside; leaving it in place', { file: path, error: String(moveErr) });
      to = '';
    }
    this.files.push({ from: path, to, error });
    this.log.error('unreadable checkpoint quarantined; its container is left alone', { file: path, movedTo: to, what, error });
  }

  list(): readonly QuarantinedFile[] {
    return this.files;
  }
}

// The manifest directory, watched (the kubelet's file source, pkg/kubelet/config/file*.go):
// inotify events and a rescan every 20 s (--file-check-frequency); each regular file that is not
// a dot file is one pod. Reports the files whose content appeared, changed or went away.
import { readdirSync, readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { isManifestFile } from './manifest.js';

export const FILE_CHECK_FREQUENCY_MS = 20_000;
/** Writes come in bursts (an editor's save): look once they settle. */
const DEBOUNCE_MS = 100;

/** file → its content, or undefined when it was removed. */
export type ManifestChanges = Map<string, string | undefined>;

export class ManifestWatcher {
  private seen = new Map<string, string>();
  private fsWatcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private dirError = '';

  constructor(
    readonly dir: string,
    private readonly onChange: (changes: ManifestChanges) => void,
    private readonly log: Logger,
    private readonly checkFrequencyMs = FILE_CHECK_FREQUENCY_MS,
  ) {}

  /** Reads the directory now; reports and returns the changes. */
  scan(): ManifestChanges {
    const now = new Map<string, string>();
    let names: string[] = [];
    try {
      names = readdirSync(this.dir);
      if (this.dirError) this.log.info('manifest dir is readable again', { dir: this.dir });
      this.dirError = '';
    } catch (err) {
      const msg = (err as Error).message;
      if (msg !== this.dirError) this.log.error('cannot read the manifest dir', { dir: this.dir, error: msg });
      this.dirError = msg;
      // An unreadable dir removes nothing: pods keep running until it says otherwise.
      return new Map();
    }
    for (const name of names.sort()) {
      const file = join(this.dir, name);
      if (!isManifestFile(file)) continue;
      try {
        if (!statSync(file).isFile()) continue;
        now.set(file, readFileSync(file, 'utf8'));
      } catch {
        // gone between the list and the read
      }
    }
    const changes: ManifestChanges = new Map();
    for (const [f, text] of now) if (this.seen.get(f) !== text) changes.set(f, text);
    for (const f of this.seen.keys()) if (!now.has(f)) changes.set(f, undefined);
    this.seen = now;
    if (changes.size > 0) this.onChange(changes);
    return changes;
  }

  start(): void {
    try {
      this.fsWatcher = watch(this.dir, { persistent: false }, () => this.soon());
      this.fsWatcher.on('error', (err) => this.log.warn('manifest dir watch failed; rescanning every 20 s only', { error: err.message }));
    } catch (err) {
      this.log.warn('cannot watch the manifest dir; rescanning every 20 s only', { dir: this.dir, error: (err as Error).message });
    }
    const tick = () => {
      this.scan();
      this.timer = setTimeout(tick, this.checkFrequencyMs);
    };
    this.timer = setTimeout(tick, this.checkFrequencyMs);
  }

  private soon(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.scan(), DEBOUNCE_MS);
  }

  stop(): void {
    this.fsWatcher?.close();
    if (this.timer) clearTimeout(this.timer);
    if (this.debounce) clearTimeout(this.debounce);
  }
}

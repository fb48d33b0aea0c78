// The CNI config directory, as the kubelet's runtimes read it: the first valid
// .conflist/.conf/.json in lexical order is the network. The directory is watched
// (fs.watch, and a slow poll while it does not exist), and every change is validated
// again, plugins and versions included, so Status can say NetworkReady and why not.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { CniExec, parseNetworkConfig, type NetworkList } from './cni.js';
import { renderConfTemplate, templateValues, TemplateError } from './conf-template.js';
import { failedPrecondition } from '../errors.js';
import { cniTemplateConfFile } from '../paths.js';

export interface NetworkState {
  ready: boolean;
  /** NetworkReady reason and message when not ready. */
  reason: string;
  message: string;
  list?: NetworkList;
  file?: string;
}

const EXTENSIONS = ['.conflist', '.conf', '.json'];

/** Load and validate the first valid config of `dir`. */
export async function loadNetwork(dir: string, exec: CniExec): Promise<NetworkState> {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => EXTENSIONS.some((e) => n.endsWith(e))).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return notReady('NoCNIConfig', `no network config: the CNI config dir ${dir} does not exist`);
    return notReady('CNIConfigUnreadable', `cannot read the CNI config dir ${dir}: ${(err as Error).message}`);
  }
  if (names.length === 0) return notReady('NoCNIConfig', `no network config found in ${dir} (no .conflist, .conf or .json file)`);
  const problems: string[] = [];
  for (const name of names) {
    const file = join(dir, name);
    try {
      const list = parseNetworkConfig(readFileSync(file, 'utf8'), name.endsWith('.conflist'));
      await exec.validate(list);
      return { ready: true, reason: '', message: '', list, file };
    } catch (err) {
      problems.push(`${file}: ${(err as Error).message}`);
    }
  }
  return notReady('InvalidCNIConfig', `no valid network config in ${dir}: ${problems.join('; ')}`);
}

function notReady(reason: string, message: string): NetworkState {
  return { ready: false, reason, message };
}

/** The current network of a conf dir, kept up to date. */
export class NetworkConfigWatcher {
  private state_: NetworkState = notReady('NetworkPluginNotReady', 'the CNI config has not been read yet');
  private watcher?: FSWatcher;
  private poll?: NodeJS.Timeout;
  private debounce?: NodeJS.Timeout;
  private loading: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    readonly dir: string,
    readonly exec: CniExec,
    private readonly log: Logger,
    /** containerd's conf_template (conf-template.ts): rendered into the dir when no valid config exists and a pod CIDR is known. */
    private readonly template = '',
  ) {}

  state(): NetworkState {
    return this.state_;
  }

  /** Read the dir now and start watching it. */
  async start(): Promise<void> {
    await this.reload();
    this.watchDir();
  }

  /** Read the dir again (also after any change the watcher sees). */
  reload(): Promise<void> {
    this.loading = this.loading.then(async () => {
      const next = await loadNetwork(this.dir, this.exec);
      const prev = this.state_;
      this.state_ = next;
      if (next.ready !== prev.ready || next.file !== prev.file || next.message !== prev.message) {
        if (next.ready) this.log.info('CNI network config loaded', { file: next.file, network: next.list?.name, cniVersion: next.list?.cniVersion });
        else this.log.warn('CNI network not ready', { reason: next.reason, message: next.message });
      }
    });
    return this.loading;
  }

  /**
   * UpdateRuntimeConfig's pod CIDRs: with a template and no valid network, write one from the
   * template, as containerd does (it skips the template while a valid config is loaded, so a
   * file it wrote once is not rewritten). The dir is read again first, as containerd loads it
   * again. Returns the file written, if any; a template that cannot be read or rendered, or
   * that renders no JSON, is a FAILED_PRECONDITION naming it, and nothing is written.
   */
  async podCidr(cidrs: string[]): Promise<string | undefined> {
    if (!this.template || cidrs.length === 0) return undefined;
    await this.reload();
    if (this.state_.ready) {
      this.log.info('CNI network ready: the config template is not used', { template: this.template, file: this.state_.file });
      return undefined;
    }
    const bad = (what: string, err: unknown) =>
      failedPrecondition(`cni_conf_template ${this.template}: ${what}: ${err instanceof Error ? err.message : String(err)}`, err);
    let text: string;
    try {
      text = renderConfTemplate(readFileSync(this.template, 'utf8'), templateValues(cidrs));
    } catch (err) {
      throw bad(err instanceof TemplateError ? 'cannot render it' : 'cannot read it', err);
    }
    try {
      JSON.parse(text);
    } catch (err) {
      throw bad(`rendered for pod CIDR ${cidrs.join(',')} it is not JSON`, err);
    }
    const ours = cniTemplateConfFile(this.dir);
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    writeFileSync(`${ours}.tmp`, text, { mode: 0o644 });
    renameSync(`${ours}.tmp`, ours);
    this.log.info('CNI config written from the template', { file: ours, template: this.template, podCidr: cidrs.join(',') });
    await this.reload();
    return ours;
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.debounce) clearTimeout(this.debounce);
  }

  private watchDir(): void {
    if (this.closed) return;
    try {
      this.watcher = watch(this.dir, { persistent: false }, () => this.changed());
      this.watcher.on('error', () => {
        // The dir went away: poll until it is back.
        this.watcher?.close();
        this.watcher = undefined;
        this.changed();
        this.pollDir();
      });
    } catch {
      this.pollDir();
    }
  }

  private pollDir(): void {
    if (this.poll || this.closed) return;
    this.poll = setInterval(() => {
      if (!existsSync(this.dir)) return;
      clearInterval(this.poll);
      this.poll = undefined;
      this.changed();
      this.watchDir();
    }, 1000);
    this.poll.unref();
  }

  private changed(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => void this.reload().catch((err) => this.log.error('reading the CNI config', { error: String(err) })), 50);
    this.debounce.unref();
  }
}

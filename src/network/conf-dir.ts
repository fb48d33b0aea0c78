// The CNI config directory, as the kubelet's runtimes read it: the first valid
// .conflist/.conf/.json in lexical order is the network. The directory is watched
// (fs.watch, and a slow poll while it does not exist), and every change is validated
// again, plugins and versions included, so Status can say NetworkReady and why not.
import { existsSync, mkdirSync, readdirSync, readFileSync, watch, writeFileSync, renameSync, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { CniExec, parseNetworkConfig, type NetworkList } from './cni.js';

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
    /** containerd's conf_template: a conflist with {{.PodCIDR}}, written when no config exists and a pod CIDR is known. */
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
   * UpdateRuntimeConfig's pod CIDR: with a template and no config in the dir, write one from
   * the template (containerd writes it whenever the CIDR changes; so do we, to our own file).
   */
  async podCidr(cidrs: string): Promise<void> {
    if (!this.template || !cidrs) return;
    const ours = join(this.dir, '10-cri-mesos.conflist');
    const others = existsSync(this.dir) ? readdirSync(this.dir).filter((n) => EXTENSIONS.some((e) => n.endsWith(e)) && join(this.dir, n) !== ours) : [];
    if (others.length) return;
    const first = cidrs.split(',')[0]!;
    const text = readFileSync(this.template, 'utf8').replaceAll('{{.PodCIDR}}', first);
    mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    writeFileSync(`${ours}.tmp`, text, { mode: 0o644 });
    renameSync(`${ours}.tmp`, ours);
    this.log.info('CNI config written from the template', { file: ours, podCidr: first });
    await this.reload();
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

// systemd's notification protocol (sd_notify(3)) without libsystemd: KEY=VALUE lines in one
// datagram to $NOTIFY_SOCKET, sent by the addon (Node's dgram has no AF_UNIX). The daemon says
// READY=1 once recovery is done and the CRI socket serves, STOPPING=1 when it begins to stop,
// and, under WatchdogSec=, WATCHDOG=1 every WATCHDOG_USEC/2 while its own Status answers.
import { native } from './native/index.js';
import type { Logger } from './log.js';

export interface NotifyEnv {
  /** $NOTIFY_SOCKET: an absolute path, or @name in the abstract namespace */
  socket: string;
  /** $WATCHDOG_USEC when the watchdog is ours ($WATCHDOG_PID unset or our pid) */
  watchdogUsec?: number;
}

/**
 * Read the service manager's variables and remove them from `env`, as sd_notify's
 * unset_environment does: nothing the daemon starts (launch helpers, docker-executors, CNI
 * plugins, the pre-launch hook) inherits them, so none of them can notify for the unit.
 * Undefined when there is no (usable) notification socket.
 */
export function takeNotifyEnv(env: NodeJS.ProcessEnv = process.env, pid = process.pid): NotifyEnv | undefined {
  const socket = env.NOTIFY_SOCKET;
  const usec = env.WATCHDOG_USEC;
  const watchdogPid = env.WATCHDOG_PID;
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  if (!socket || !/^[/@]./.test(socket)) return undefined;
  const out: NotifyEnv = { socket };
  const n = usec && /^\d+$/.test(usec) ? Number(usec) : 0;
  if (n > 0 && (!watchdogPid || Number(watchdogPid) === pid)) out.watchdogUsec = n;
  return out;
}

/** A probe of the daemon's health: resolves true when it is healthy. */
export type HealthProbe = () => Promise<boolean>;

export class SystemdNotifier {
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  private healthy = true;
  private lastError = '';

  constructor(
    readonly socket: string,
    private readonly log: Logger,
    private readonly send: (socket: string, message: string) => void = (s, m) => native().sdNotify(s, m),
  ) {}

  /** Send one message of KEY=VALUE fields; false (logged once per kind of error) when it could not go. */
  notify(fields: Record<string, string | number>): boolean {
    // A newline in a value would start a field of its own.
    const message = Object.entries(fields)
      .map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`)
      .join('\n');
    try {
      this.send(this.socket, message);
      this.lastError = '';
      return true;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== this.lastError) this.log.warn('sd_notify: cannot reach the service manager', { socket: this.socket, err: e.message });
      this.lastError = e.code ?? e.message;
      return false;
    }
  }

  ready(status: string): boolean {
    return this.notify({ READY: 1, MAINPID: process.pid, STATUS: status });
  }

  stopping(status: string): boolean {
    this.stopWatchdog();
    return this.notify({ STOPPING: 1, STATUS: status });
  }

  /**
   * WATCHDOG=1 every usec/2 while `probe` answers true within a quarter of usec. A probe that
   * fails, answers false or hangs costs that ping (and the next ones while it hangs: probes never
   * pile up), so a daemon that cannot answer its Status is restarted by systemd. A blocked event
   * loop sends nothing at all.
   */
  startWatchdog(usec: number, probe: HealthProbe): void {
    this.stopWatchdog();
    const intervalMs = Math.max(1, Math.floor(usec / 2000));
    const timeoutMs = Math.max(1, Math.floor(usec / 4000));
    this.timer = setInterval(() => void this.tick(probe, timeoutMs), intervalMs);
    this.timer.unref();
    void this.tick(probe, timeoutMs);
  }

  stopWatchdog(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(probe: HealthProbe, timeoutMs: number): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    const answer = Promise.resolve().then(probe);
    // A probe that timed out keeps `probing` set until it settles: a hung Status is not asked again and again.
    void answer.then(
      () => (this.probing = false),
      () => (this.probing = false),
    );
    let timer: NodeJS.Timeout | undefined;
    let problem = '';
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      });
      if (!(await Promise.race([answer, timeout]))) problem = 'Status does not report RuntimeReady';
    } catch (err) {
      problem = (err as Error).message;
    } finally {
      clearTimeout(timer);
    }
    if (!this.timer) return;
    if (!problem) {
      if (!this.healthy) this.log.info('watchdog: Status answers again; pinging systemd');
      this.healthy = true;
      this.notify({ WATCHDOG: 1 });
    } else if (this.healthy) {
      this.healthy = false;
      this.log.warn('watchdog: Status did not answer; not pinging systemd', { err: problem });
    }
  }
}

// The runtime-neutral face of the streaming layer: what a Runtime gets for an
// exec or attach, whichever transport (SPDY or WebSocket) the client chose.
import type { Readable, Writable } from 'node:stream';

export interface TerminalSize {
  width: number;
  height: number;
}

/** How an exec ended: an exit code (0 = success), or an error of the runtime
 *  itself (reported to the client as InternalError, HTTP code 500). */
export type ExitStatus = { exitCode: number; message?: string } | { internalError: string };

export interface StreamIO {
  readonly tty: boolean;
  /** the client's stdin; ends on the client's half-close */
  readonly stdin: Readable | null;
  readonly stdout: Writable | null;
  /** always null with a tty (the terminal merges stderr into stdout) */
  readonly stderr: Writable | null;
  /** terminal sizes as the client sends them; null without a tty (or before v3 over SPDY) */
  readonly resize: AsyncIterable<TerminalSize> | null;
  /** true once the client connection is gone */
  readonly closed: boolean;
  /** End stdout and stderr, send `status` on the error channel, close the
   *  connection. The server calls this when Runtime.exec/attach settles;
   *  idempotent. */
  done(status: ExitStatus): Promise<void>;
  /** `cb` runs once when the client connection goes away (at once if it already has) */
  onClose(cb: () => void): void;
}

export interface RemoteCommandOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

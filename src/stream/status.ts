// What goes on the error stream when an exec/attach ends. v4+ carries a
// JSON-encoded metav1.Status (client-go's v4 decoder reads the exit code from
// details.causes[reason=ExitCode]); older protocols carry the message as plain
// text, and nothing on success.
import type { ExitStatus } from './types.js';

interface Status {
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { causes: { reason?: string; message: string }[] };
  code?: number;
}

export function statusObject(s: ExitStatus): Status {
  if ('internalError' in s) {
    return {
      metadata: {},
      status: 'Failure',
      message: `Internal error occurred: ${s.internalError}`,
      reason: 'InternalError',
      details: { causes: [{ message: s.internalError }] },
      code: 500,
    };
  }
  if (s.exitCode === 0) return { metadata: {}, status: 'Success' };
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: ${s.message ?? `exit code ${s.exitCode}`}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(s.exitCode) }] },
  };
}

/** The error-stream payload for `s`, or null when nothing is to be written. */
export function encodeStatus(s: ExitStatus, jsonStatus: boolean): Buffer | null {
  const obj = statusObject(s);
  if (jsonStatus) return Buffer.from(JSON.stringify(obj));
  return obj.status === 'Success' ? null : Buffer.from(obj.message ?? 'error');
}

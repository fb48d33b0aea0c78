/**
 * The one error convention of cri-mesos. Every layer (store, images, containerizer, CRI)
 * throws a StatusError that carries the gRPC code the client should see, so handlers pass
 * errors through and never match on message text. Errors from the kernel or the addon keep
 * their errno name in `.code` (a string such as 'EMFILE'); `fromErrno` classifies them.
 *
 * The codes are gRPC's numbers (google.rpc.Code); this module does not import grpc so that
 * lower layers stay free of the transport.
 */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type Code = (typeof Code)[keyof typeof Code];

/** An error with the status code a client should see. */
export class StatusError extends Error {
  constructor(
    readonly status: Code,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StatusError';
  }
}

export const invalidArgument = (msg: string, cause?: unknown) => new StatusError(Code.INVALID_ARGUMENT, msg, { cause });
export const notFound = (msg: string, cause?: unknown) => new StatusError(Code.NOT_FOUND, msg, { cause });
export const failedPrecondition = (msg: string, cause?: unknown) => new StatusError(Code.FAILED_PRECONDITION, msg, { cause });
export const alreadyExists = (msg: string, cause?: unknown) => new StatusError(Code.ALREADY_EXISTS, msg, { cause });
export const resourceExhausted = (msg: string, cause?: unknown) => new StatusError(Code.RESOURCE_EXHAUSTED, msg, { cause });
export const unavailable = (msg: string, cause?: unknown) => new StatusError(Code.UNAVAILABLE, msg, { cause });
export const internal = (msg: string, cause?: unknown) => new StatusError(Code.INTERNAL, msg, { cause });
export const unknown = (msg: string, cause?: unknown) => new StatusError(Code.UNKNOWN, msg, { cause });
export const deadlineExceeded = (msg: string, cause?: unknown) => new StatusError(Code.DEADLINE_EXCEEDED, msg, { cause });
export const aborted = (msg: string, cause?: unknown) => new StatusError(Code.ABORTED, msg, { cause });
export const dataLoss = (msg: string, cause?: unknown) => new StatusError(Code.DATA_LOSS, msg, { cause });
export const unimplemented = (msg: string, cause?: unknown) => new StatusError(Code.UNIMPLEMENTED, msg, { cause });
export const permissionDenied = (msg: string, cause?: unknown) => new StatusError(Code.PERMISSION_DENIED, msg, { cause });

/** The errno name of a Node or addon error ('ENOENT', ...), if it has one. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** ENOENT: the one errno that means "absent" (fail safe: every other error is a failure). */
export function isAbsent(err: unknown): boolean {
  return errnoOf(err) === 'ENOENT';
}

const ERRNO_STATUS: Record<string, Code> = {
  ENOENT: Code.NOT_FOUND,
  EEXIST: Code.ALREADY_EXISTS,
  EMFILE: Code.RESOURCE_EXHAUSTED,
  ENFILE: Code.RESOURCE_EXHAUSTED,
  ENOMEM: Code.RESOURCE_EXHAUSTED,
  ENOSPC: Code.RESOURCE_EXHAUSTED,
  EDQUOT: Code.RESOURCE_EXHAUSTED,
  EAGAIN: Code.RESOURCE_EXHAUSTED,
  EBUSY: Code.FAILED_PRECONDITION,
  ESRCH: Code.FAILED_PRECONDITION,
  ENOTEMPTY: Code.FAILED_PRECONDITION,
  EPERM: Code.PERMISSION_DENIED,
  EACCES: Code.PERMISSION_DENIED,
  EROFS: Code.FAILED_PRECONDITION,
  EINVAL: Code.INVALID_ARGUMENT,
  ENOSYS: Code.UNIMPLEMENTED,
  EOPNOTSUPP: Code.UNIMPLEMENTED,
  ETIMEDOUT: Code.DEADLINE_EXCEEDED,
  ECONNREFUSED: Code.UNAVAILABLE,
  EIO: Code.DATA_LOSS,
};

/** The status of any thrown value: its own, the one its errno implies, or UNKNOWN. */
export function statusOf(err: unknown): Code {
  if (err instanceof StatusError) return err.status;
  const errno = errnoOf(err);
  return (errno !== undefined ? ERRNO_STATUS[errno] : undefined) ?? Code.UNKNOWN;
}

/** `err` as a StatusError whose message starts with `context`; its code is kept. */
export function withContext(err: unknown, context: string): StatusError {
  const message = err instanceof Error ? err.message : String(err);
  return new StatusError(statusOf(err), `${context}: ${message}`, { cause: err });
}

import { status } from '@grpc/grpc-js';

/** An error that carries the gRPC status code the client should see. */
export class CriError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'CriError';
  }
}

export const invalidArgument = (msg: string) => new CriError(status.INVALID_ARGUMENT, msg);
export const notFound = (msg: string) => new CriError(status.NOT_FOUND, msg);
export const failedPrecondition = (msg: string) => new CriError(status.FAILED_PRECONDITION, msg);
export const alreadyExists = (msg: string) => new CriError(status.ALREADY_EXISTS, msg);
export const internal = (msg: string) => new CriError(status.INTERNAL, msg);
export const deadlineExceeded = (msg: string) => new CriError(status.DEADLINE_EXCEEDED, msg);
export const unimplemented = (msg: string) => new CriError(status.UNIMPLEMENTED, msg);

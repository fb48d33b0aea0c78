import test from 'ava';
import { status } from '@grpc/grpc-js';
import { Code, StatusError, isAbsent, notFound, statusOf, withContext } from '../../src/errors.js';
import { toServiceError } from '../../src/cri/server.js';
import { ResourceError } from '../../src/containerizer/mesos/isolator.js';
import { RegistryError } from '../../src/images/registry.js';

test('the codes are gRPC’s numbers', (t) => {
  for (const [name, n] of Object.entries(Code)) t.is(n as number, (status as unknown as Record<string, number>)[name], name);
});

test('a typed error keeps its code through context and onto the wire', (t) => {
  const e = withContext(notFound('container abc is unknown'), 'cannot start container abc');
  t.is(e.status, Code.NOT_FOUND);
  t.is(e.message, 'cannot start container abc: container abc is unknown');
  t.deepEqual(toServiceError(e), { code: status.NOT_FOUND, details: e.message, message: e.message });
  t.is(toServiceError(new ResourceError('linux.resources.memory_limit_in_bytes', 'too low')).code, status.INVALID_ARGUMENT);
  t.is(toServiceError(new RegistryError('unauthenticated', 'no token')).code, status.UNAUTHENTICATED);
});

test('kernel errors are classified by errno, never by their words', (t) => {
  const errno = (code: string) => Object.assign(new Error('the words do not matter: not found'), { code });
  t.is(statusOf(errno('EMFILE')), Code.RESOURCE_EXHAUSTED);
  t.is(statusOf(errno('EBUSY')), Code.FAILED_PRECONDITION);
  t.is(statusOf(errno('ENOENT')), Code.NOT_FOUND);
  t.is(statusOf(new Error('container is not found')), Code.UNKNOWN);
  t.is(withContext(errno('EBUSY'), 'updating resources').status, Code.FAILED_PRECONDITION);
  t.true(isAbsent(errno('ENOENT')));
  t.false(isAbsent(errno('EACCES')));
  t.false(isAbsent(new StatusError(Code.NOT_FOUND, 'x')));
});

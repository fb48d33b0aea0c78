// The daemon's log lines: --log-format json as log shippers read it (time, level, msg, err), the
// text format as before, and the pod's name and namespace on lines that name a pod by id.
import test from 'ava';
import { PassThrough } from 'node:stream';
import { createLogger, podFields, setPodLookup, type Logger } from '../../src/log.js';

function capture(format: 'text' | 'json', level = 'debug'): { log: Logger; lines: () => string[] } {
  const stream = new PassThrough();
  let out = '';
  stream.on('data', (d: Buffer) => (out += d.toString()));
  const log = createLogger({ level, format, stream });
  return { log, lines: () => out.split('\n').filter(Boolean) };
}

const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

test('json: one object per line with time (RFC 3339), level, msg, the fields, and errors as err', (t) => {
  const { log, lines } = capture('json');
  log.info('pod sandbox ready', { pod: 'abc', ms: 12.5 });
  log.warn('request failed', { rpc: 'RunPodSandbox', code: 'INVALID_ARGUMENT', error: 'config.metadata is required' });
  log.error('cannot start', { err: new Error('EADDRINUSE: address in use') });
  log.debug('odd fields', { time: 'mine', msg: 'shadowed', big: 10n, nested: { e: new Error('inner') } });
  const parsed = lines().map((l) => JSON.parse(l) as Record<string, unknown>);
  t.is(parsed.length, 4);
  for (const p of parsed) {
    t.deepEqual(Object.keys(p).slice(0, 3), ['time', 'level', 'msg']);
    t.regex(p.time as string, RFC3339);
    t.false(Number.isNaN(Date.parse(p.time as string)));
    t.false('message' in p || 'timestamp' in p || 'error' in p);
  }
  t.like(parsed[0], { level: 'info', msg: 'pod sandbox ready', pod: 'abc', ms: 12.5 });
  t.like(parsed[1], { level: 'warn', msg: 'request failed', rpc: 'RunPodSandbox', code: 'INVALID_ARGUMENT', err: 'config.metadata is required' });
  t.like(parsed[2], { level: 'error', msg: 'cannot start', err: 'EADDRINUSE: address in use' });
  // Reserved keys are never overwritten by a field: it moves to fields.<key>, as logrus does.
  t.like(parsed[3], { level: 'debug', msg: 'odd fields', 'fields.time': 'mine', 'fields.msg': 'shadowed', big: '10', nested: { e: 'inner' } });
});

test('text: unchanged logfmt-like lines', (t) => {
  const { log, lines } = capture('text');
  log.info('container exited', { container: 'c1', exitCode: 0, reason: 'Completed' });
  log.warn('request failed', { rpc: 'X', error: 'two words' });
  const [a, b] = lines();
  t.regex(a!, /^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z" level=info msg="container exited" container=c1 exitCode=0 reason=Completed$/);
  t.regex(b!, /^time="[^"]+" level=warn msg="request failed" rpc=X error="two words"$/);
});

test('lines naming a pod by id, or a container of it, carry the pod name and namespace', (t) => {
  for (const format of ['json', 'text'] as const) {
    const { log, lines } = capture(format);
    const pods: Record<string, { name: string; namespace: string }> = { p1: { name: 'web', namespace: 'shop' } };
    const containers: Record<string, string> = { c1: 'p1' };
    setPodLookup(log, (f) => {
      const id = typeof f.pod === 'string' ? f.pod : typeof f.container === 'string' ? (containers[f.container] ?? f.container.split('.')[0]) : undefined;
      const m = id ? pods[id] : undefined;
      return m ? { podName: m.name, podNamespace: m.namespace } : undefined;
    });
    log.info('pod sandbox ready', { pod: 'p1' });
    log.child({ component: 'x' }).info('container started', { container: 'c1' });
    log.info('container state', { container: 'p1.c1', state: 'RUNNING' });
    log.info('pod sandbox removed', { pod: 'gone', ...podFields({ name: 'old', namespace: 'ns' }) });
    log.info('unrelated', { image: 'busybox' });
    log.info('unknown pod', { pod: 'nope' });
    const out = lines();
    if (format === 'json') {
      const p = out.map((l) => JSON.parse(l) as Record<string, unknown>);
      for (const i of [0, 1, 2]) t.like(p[i], { podName: 'web', podNamespace: 'shop' });
      t.like(p[3], { pod: 'gone', podName: 'old', podNamespace: 'ns' });
      t.false('podName' in p[4]! || 'podName' in p[5]!);
    } else {
      for (const i of [0, 1, 2]) t.true(out[i]!.includes(' podName=web podNamespace=shop'), out[i]);
      t.true(out[3]!.endsWith('pod=gone podName=old podNamespace=ns'));
      t.false(out[4]!.includes('podName') || out[5]!.includes('podName'));
    }
  }
});

test('lines below the level are dropped before they are formatted; a level raised later lets them through', (t) => {
  for (const format of ['json', 'text'] as const) {
    const { log, lines } = capture(format, 'info');
    let lookups = 0;
    setPodLookup(log, () => {
      lookups++;
      return { podName: 'web', podNamespace: 'shop' };
    });
    log.debug('request', { rpc: 'PodSandboxStatus', pod: 'p1' });
    log.log('debug', 'response', { rpc: 'PodSandboxStatus', pod: 'p1', ms: 0.1 });
    log.log({ level: 'debug', message: 'one object', pod: 'p1' });
    log.child({ component: 'x' }).debug('from a child', { pod: 'p1' });
    log.debug('no fields');
    // none of them reached the format: the pod lookup (the first step of it) never ran
    t.is(lookups, 0);
    log.info('pod sandbox ready', { pod: 'p1' });
    log.log('warn', 'request failed', { rpc: 'X', pod: 'p1' });
    log.child({ component: 'x' }).info('from a child', { pod: 'p1' });
    t.is(lookups, 3);
    log.level = 'debug';
    log.debug('now written', { pod: 'p1' });
    log.log('debug', 'this too');
    const out = lines();
    t.is(out.length, 5, out.join('\n'));
    t.true(out[0]!.includes('pod sandbox ready') && out[1]!.includes('request failed') && out[2]!.includes('from a child'));
    t.true(out[3]!.includes('now written') && out[3]!.includes('podName'));
    t.true(out[4]!.includes('this too'));
  }
});

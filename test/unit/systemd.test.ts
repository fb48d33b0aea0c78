// The sd_notify side of the daemon without a daemon: which variables it takes (and hides from
// its children), and when the watchdog pings. The datagrams themselves are tested against a
// listening socket in test/integration/systemd-notify.test.ts.
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { SystemdNotifier, takeNotifyEnv } from '../../src/systemd.js';
import { silentLogger } from '../../src/log.js';

test('takeNotifyEnv: reads NOTIFY_SOCKET and the watchdog, and unsets them for children', (t) => {
  const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/run/systemd/notify', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42', PATH: '/bin' };
  t.deepEqual(takeNotifyEnv(env, 42), { socket: '/run/systemd/notify', watchdogUsec: 30_000_000 });
  t.deepEqual(env, { PATH: '/bin' });
  // Abstract socket; the watchdog is another process's; no WATCHDOG_PID means ours.
  t.deepEqual(takeNotifyEnv({ NOTIFY_SOCKET: '@/org/freedesktop/systemd1/notify', WATCHDOG_USEC: '1000', WATCHDOG_PID: '7' }, 42), { socket: '@/org/freedesktop/systemd1/notify' });
  t.deepEqual(takeNotifyEnv({ NOTIFY_SOCKET: '/n', WATCHDOG_USEC: '1000' }, 42), { socket: '/n', watchdogUsec: 1000 });
  t.deepEqual(takeNotifyEnv({ NOTIFY_SOCKET: '/n', WATCHDOG_USEC: 'soon' }, 42), { socket: '/n' });
  // Not under systemd, or a socket address sd_notify would not use either.
  const relative: NodeJS.ProcessEnv = { NOTIFY_SOCKET: 'notify.sock', WATCHDOG_USEC: '1000' };
  t.is(takeNotifyEnv(relative, 42), undefined);
  t.deepEqual(relative, {});
  t.is(takeNotifyEnv({}, 42), undefined);
});

function notifier() {
  const sent: string[] = [];
  const n = new SystemdNotifier('/fake', silentLogger(), (_s, m) => sent.push(m));
  return { n, sent, pings: () => sent.filter((m) => m === 'WATCHDOG=1').length };
}

test('watchdog: a ping per usec/2 while the probe answers true, none while it fails, says false or hangs', async (t) => {
  const { n, sent, pings } = notifier();
  let health: 'ok' | 'false' | 'throw' | 'hang' = 'ok';
  let probes = 0;
  n.startWatchdog(80_000, async () => {
    probes++;
    if (health === 'hang') return new Promise<boolean>(() => undefined);
    if (health === 'throw') throw new Error('UNAVAILABLE');
    return health === 'ok';
  });
  await sleep(450);
  t.true(pings() >= 5, `${pings()} pings`);
  for (const bad of ['false', 'throw'] as const) {
    health = bad;
    await sleep(60);
    const before = pings();
    await sleep(300);
    t.is(pings(), before, `no ping while the probe ${bad}s`);
  }
  health = 'hang';
  await sleep(60);
  const before = pings();
  const probesBefore = probes;
  await sleep(300);
  t.is(pings(), before, 'no ping while the probe hangs');
  t.true(probes - probesBefore <= 1, 'a hung probe is not asked again and again');
  n.stopping('bye');
  t.deepEqual(sent.at(-1), 'STOPPING=1\nSTATUS=bye');
});

test('messages: READY carries MAINPID and STATUS; a newline in a value cannot start a field', (t) => {
  const { n, sent } = notifier();
  n.ready('serving CRI on /run/x.sock');
  n.notify({ STATUS: 'two\nlines' });
  t.deepEqual(sent, [`READY=1\nMAINPID=${process.pid}\nSTATUS=serving CRI on /run/x.sock`, 'STATUS=two lines']);
});

test('a send that fails is reported as false, never thrown', (t) => {
  const n = new SystemdNotifier('/nobody', silentLogger(), () => {
    throw Object.assign(new Error('ECONNREFUSED: Connection refused, sendto'), { code: 'ECONNREFUSED' });
  });
  t.false(n.ready('x'));
});

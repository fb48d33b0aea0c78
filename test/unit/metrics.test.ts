// The metrics module without a daemon: what src/metrics writes is valid Prometheus text
// (read back by the strict parser of test/helpers/prom-text.ts), its names follow Prometheus'
// conventions, the hooks move what they should; the parser itself rejects what breaks the
// format, so the integration tests' parse can fail; metrics_address is checked.
import test from 'ava';
import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { Metrics, type ScrapeSource } from '../../src/metrics/metrics.js';
import { parseListenAddress } from '../../src/metrics/address.js';
import { parseConfigToml, loadConfig } from '../../src/config.js';
import { ExpositionError, parseExposition, sampleValue } from '../helpers/prom-text.js';

test('the parser reads back what prom-client writes: every type, labels with escapes, labelled histograms per series', async (t) => {
  const registry = new Registry();
  const registers = [registry];
  new Counter({ name: 'c_total', help: 'a counter with \\ and\nnewline', labelNames: ['path'], registers }).inc({ path: 'C:\\dir\\"x"\nnext' }, 3);
  new Gauge({ name: 'g', help: 'a gauge', registers }).set(-2.5);
  const h = new Histogram({ name: 'h_seconds', help: 'a histogram', labelNames: ['m'], buckets: [0.1, 1], registers });
  h.observe({ m: 'a' }, 0.05);
  h.observe({ m: 'a' }, 0.5);
  h.observe({ m: 'b' }, 5);
  new Summary({ name: 's', help: 'a summary', percentiles: [0.5], registers }).observe(1);
  const fams = parseExposition(await registry.metrics());
  t.is(fams.get('c_total')?.type, 'counter');
  t.is(fams.get('c_total')?.help, 'a counter with \\ and\nnewline');
  t.is(sampleValue(fams, 'c_total', { path: 'C:\\dir\\"x"\nnext' }), 3);
  t.is(sampleValue(fams, 'g'), -2.5);
  t.is(sampleValue(fams, 'h_seconds_count', { m: 'a' }), 2);
  t.is(sampleValue(fams, 'h_seconds_bucket', { m: 'a', le: '0.1' }), 1);
  t.is(sampleValue(fams, 'h_seconds_bucket', { m: 'a', le: '+Inf' }), 2);
  t.is(sampleValue(fams, 'h_seconds_count', { m: 'b' }), 1);
  t.is(sampleValue(fams, 'h_seconds_bucket', { m: 'b', le: '1' }), 0);
  t.is(sampleValue(fams, 's_count'), 1);
  t.is(fams.get('s')?.type, 'summary');
});

test('the parser rejects text that breaks the format', (t) => {
  const bad: [string, string][] = [
    ['a 1\nb 1\na 2\n', 'a family in two groups'],
    ['a 1\n# TYPE a gauge\n', 'TYPE after samples'],
    ['# TYPE a gauge\n# TYPE a gauge\na 1\n', 'two TYPEs'],
    ['# TYPE a wibble\na 1\n', 'unknown type'],
    ['a{x="1"} 1\na{x="1"} 2\n', 'a series twice'],
    ['a{x="\\t"} 1\n', 'bad escape'],
    ['a{x="1",x="2"} 1\n', 'label twice'],
    ['a{__x="1"} 1\n', 'reserved label'],
    ['a{x=1} 1\n', 'unquoted label value'],
    ['a{x="1" y="2"} 1\n', 'labels without a comma'],
    ['a one\n', 'value not a float'],
    ['a 1 2 3\n', 'text after the timestamp'],
    ['1a 1\n', 'bad metric name'],
    ['a 1', 'no final newline'],
    ['# TYPE c counter\nc -1\n', 'negative counter'],
    ['# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', 'not cumulative'],
    ['# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', 'no +Inf bucket'],
    ['# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n', '+Inf is not _count'],
    ['# TYPE h histogram\nh_bucket 1\nh_count 1\n', 'bucket without le'],
    ['# TYPE h histogram\nh 1\n', 'a bare sample in a histogram'],
  ];
  for (const [text, why] of bad) t.throws(() => parseExposition(text), { instanceOf: Error }, why);
  t.throws(() => parseExposition('a 1\nb 1\na 2\n'), { instanceOf: ExpositionError, message: /line 3: the lines of family a are not one group/ });
});

function fakeSource(over: Partial<ScrapeSource> = {}): ScrapeSource {
  return {
    pods: () => [
      { state: 'SANDBOX_READY', containerizer: 'mesos' },
      { state: 'SANDBOX_READY', containerizer: 'mesos' },
      { state: 'SANDBOX_NOTREADY', containerizer: 'docker' },
    ],
    containers: () => [{ state: 'CONTAINER_RUNNING', containerizer: 'mesos' }],
    containerizerNames: () => ['mesos', 'docker'],
    census: () => [
      {
        containerizer: 'mesos',
        census: {
          states: [
            { kind: 'pod', state: 'RUNNING', count: 2 },
            { kind: 'container', state: 'FETCHING', count: 1 },
          ],
          helpers: [{ kind: 'pod', count: 2 }],
        },
      },
      { containerizer: 'docker', census: { states: [{ kind: 'pod', state: 'TERMINATED', count: 1 }] } },
    ],
    events: () => ({ subscribers: 2, sent: 7, dropped: 1 }),
    ...over,
  };
}

test('Metrics: valid text, cri_mesos_ names in Prometheus style, and the hooks move their series', async (t) => {
  const m = new Metrics();
  let events = { subscribers: 2, sent: 7, dropped: 1 };
  m.bind(fakeSource({ events: () => events }));
  m.rpc('Version', 0.001, 0);
  m.rpc('Version', 0.002, 0);
  m.rpc('PodSandboxStatus', 0.003, 5);
  m.launchPhase('PROVISIONING', 'container', 0.2);
  m.pullBytes(100);
  m.pullBytes(23);
  m.pullDone(1.5);
  m.pullFailed(5);
  m.oomKilled('mesos');
  m.recovered({ seconds: 0.25, containers: { running: 3, exited: 1 }, orphans: { cgroup: 2 } });
  const fams = parseExposition(await m.scrape());
  for (const f of fams.values()) {
    t.regex(f.name, /^cri_mesos_[a-z0-9_]+$/, f.name);
    t.truthy(f.help, `${f.name} has a HELP`);
    if (f.type === 'counter') t.regex(f.name, /_total$/, `counter ${f.name}`);
  }
  t.is(sampleValue(fams, 'cri_mesos_rpc_duration_seconds_count', { method: 'Version' }), 2);
  t.is(sampleValue(fams, 'cri_mesos_rpc_duration_seconds_count', { method: 'PodSandboxStatus' }), 1);
  t.is(sampleValue(fams, 'cri_mesos_rpc_errors_total', { method: 'PodSandboxStatus', code: 'NOT_FOUND' }), 1);
  t.is(sampleValue(fams, 'cri_mesos_rpc_errors_total', { method: 'Version', code: 'OK' }), undefined);
  t.is(sampleValue(fams, 'cri_mesos_launch_phase_duration_seconds_count', { phase: 'PROVISIONING', kind: 'container' }), 1);
  t.is(sampleValue(fams, 'cri_mesos_launch_phase_duration_seconds_bucket', { phase: 'PROVISIONING', kind: 'container', le: '0.1' }), 0);
  t.is(sampleValue(fams, 'cri_mesos_launch_phase_duration_seconds_bucket', { phase: 'PROVISIONING', kind: 'container', le: '0.25' }), 1);
  t.is(sampleValue(fams, 'cri_mesos_image_pull_bytes_total'), 123);
  t.is(sampleValue(fams, 'cri_mesos_image_pull_duration_seconds_sum'), 1.5);
  t.is(sampleValue(fams, 'cri_mesos_image_pull_failures_total', { code: 'NOT_FOUND' }), 1);
  t.is(sampleValue(fams, 'cri_mesos_oom_kills_total', { containerizer: 'mesos' }), 1);
  t.is(sampleValue(fams, 'cri_mesos_recovery_duration_seconds'), 0.25);
  t.is(sampleValue(fams, 'cri_mesos_recovery_containers', { outcome: 'running' }), 3);
  t.is(sampleValue(fams, 'cri_mesos_recovery_orphans', { kind: 'cgroup' }), 2);
  // State, from the source at scrape time; every CRI state of every containerizer is there, 0 included.
  t.is(sampleValue(fams, 'cri_mesos_pods', { state: 'SANDBOX_READY', containerizer: 'mesos' }), 2);
  t.is(sampleValue(fams, 'cri_mesos_pods', { state: 'SANDBOX_NOTREADY', containerizer: 'docker' }), 1);
  t.is(sampleValue(fams, 'cri_mesos_pods', { state: 'SANDBOX_READY', containerizer: 'docker' }), 0);
  t.is(sampleValue(fams, 'cri_mesos_containers', { state: 'CONTAINER_EXITED', containerizer: 'mesos' }), 0);
  t.is(sampleValue(fams, 'cri_mesos_containers', { state: 'CONTAINER_RUNNING', containerizer: 'mesos' }), 1);
  t.is(sampleValue(fams, 'cri_mesos_containerizer_containers', { containerizer: 'mesos', kind: 'pod', state: 'RUNNING' }), 2);
  t.is(sampleValue(fams, 'cri_mesos_containerizer_containers', { containerizer: 'docker', kind: 'pod', state: 'TERMINATED' }), 1);
  t.is(sampleValue(fams, 'cri_mesos_helper_processes', { containerizer: 'mesos', kind: 'pod' }), 2);
  t.is(sampleValue(fams, 'cri_mesos_helper_processes', { containerizer: 'mesos', kind: 'container' }), 0);
  // Docker tells no helpers: no series rather than a false 0.
  t.is(sampleValue(fams, 'cri_mesos_helper_processes', { containerizer: 'docker', kind: 'pod' }), undefined);
  t.is(sampleValue(fams, 'cri_mesos_event_subscribers'), 2);
  t.is(sampleValue(fams, 'cri_mesos_events_sent_total'), 7);
  t.is(sampleValue(fams, 'cri_mesos_event_subscribers_dropped_total'), 1);
  // The EventBus's own counters grow: the metric follows, and a second scrape does not count twice.
  events = { subscribers: 0, sent: 9, dropped: 3 };
  const again = parseExposition(await m.scrape());
  t.is(sampleValue(again, 'cri_mesos_events_sent_total'), 9);
  t.is(sampleValue(again, 'cri_mesos_event_subscribers_dropped_total'), 3);
  t.is(sampleValue(again, 'cri_mesos_event_subscribers'), 0);
  const third = parseExposition(await m.scrape());
  t.is(sampleValue(third, 'cri_mesos_event_subscribers_dropped_total'), 3);
  // prom-client's process metrics are there, under our prefix.
  t.true(third.has('cri_mesos_process_resident_memory_bytes'));
});

test('two Metrics have registries of their own (not prom-client global one)', async (t) => {
  const a = new Metrics();
  const b = new Metrics();
  a.rpc('Version', 0.001, 0);
  t.is(sampleValue(parseExposition(await a.scrape()), 'cri_mesos_rpc_duration_seconds_count', { method: 'Version' }), 1);
  t.is(sampleValue(parseExposition(await b.scrape()), 'cri_mesos_rpc_duration_seconds_count', { method: 'Version' }), undefined);
});

test('metrics_address: host:port, [v6]:port or :port; off by default; a bad one names the key', (t) => {
  t.deepEqual(parseListenAddress('127.0.0.1:9090'), { host: '127.0.0.1', port: 9090 });
  t.deepEqual(parseListenAddress('[::1]:9090'), { host: '::1', port: 9090 });
  t.deepEqual(parseListenAddress(':9090'), { host: '', port: 9090 });
  t.deepEqual(parseListenAddress('localhost:0'), { host: 'localhost', port: 0 });
  for (const bad of ['127.0.0.1', '127.0.0.1:99999', '::1:9090', 'http://127.0.0.1:9090', '127.0.0.1:port', ' 127.0.0.1:9090']) {
    t.throws(() => parseListenAddress(bad), { message: /metrics_address: ".*" is not host:port/ }, bad);
  }
  t.is(loadConfig('/dev/null', {}).metricsAddress, '');
  t.is(parseConfigToml('metrics_address = "127.0.0.1:9090"\n').metricsAddress, '127.0.0.1:9090');
  t.is(loadConfig('/dev/null', { metricsAddress: '[::1]:9191' }).metricsAddress, '[::1]:9191');
  t.throws(() => parseConfigToml('metrics_address = "9090"\n'), { message: /metrics_address/ });
  t.throws(() => loadConfig('/dev/null', { metricsAddress: 'nope' }), { message: /metrics_address/ });
});

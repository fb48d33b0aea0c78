// The pre-launch hook's output parsing, label merge and config keys; and one run of a real
// script (no daemon): what it reads, the environment it gets, how a failure reads.
import test from 'ava';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mergeLabels, parseHookOutput, runHook, type HookInput } from '../../src/cri/runtime/pre-launch-hook.js';
import { Code, type StatusError } from '../../src/errors.js';
import { defaultConfig, parseConfigToml } from '../../src/config.js';
import { tempDir } from '../helpers/suite.js';

test('empty or blank output changes nothing', (t) => {
  t.deepEqual(parseHookOutput(''), { env: [], labels: {} });
  t.deepEqual(parseHookOutput(' \n\t\n'), { env: [], labels: {} });
  t.deepEqual(parseHookOutput('{}'), { env: [], labels: {} });
});

test('env as a list of key/value or as an object, labels as an object', (t) => {
  t.deepEqual(parseHookOutput('{"env":[{"key":"A","value":"1"},{"key":"B","value":""}],"labels":{"x":"y"}}'), {
    env: [
      { key: 'A', value: '1' },
      { key: 'B', value: '' },
    ],
    labels: { x: 'y' },
  });
  t.deepEqual(parseHookOutput('{"env":{"A":"1","B":"two words"}}\n'), {
    env: [
      { key: 'A', value: '1' },
      { key: 'B', value: 'two words' },
    ],
    labels: {},
  });
});

test('bad output is refused with what is wrong', (t) => {
  const bad: [string, RegExp][] = [
    ['not json', /not JSON/],
    ['{"env":', /not JSON/],
    ['[1,2]', /not a JSON object/],
    ['"text"', /not a JSON object/],
    ['null', /not a JSON object/],
    ['{"envs":{}}', /unknown key "envs" \(known: env, labels\)/],
    ['{"env":"A=1"}', /env is neither a list/],
    ['{"env":[["A","1"]]}', /env\[0\] is not an object/],
    ['{"env":[{"key":"A"}]}', /env\[0\]\.value is not a string/],
    ['{"env":[{"key":"A=B","value":"1"}]}', /env\[0\]\.key "A=B" is not an environment variable name/],
    ['{"env":[{"key":"","value":"1"}]}', /env\[0\]\.key "" is not an environment variable name/],
    ['{"env":{"A":1}}', /env\["A"\] is not a string/],
    ['{"env":{"A":"a\\u0000b"}}', /env\["A"\] contains a NUL byte/],
    ['{"labels":[]}', /labels is not an object/],
    ['{"labels":{"k":true}}', /labels\["k"\] is not a string/],
    ['{"labels":{"":"v"}}', /labels has an empty key/],
  ];
  for (const [out, re] of bad) t.throws(() => parseHookOutput(out), { message: re }, out);
});

test('a hook adds labels and may not change one the request set', (t) => {
  t.deepEqual(mergeLabels({ app: 'a' }, { team: 't' }), { app: 'a', team: 't' });
  t.deepEqual(mergeLabels({ app: 'a' }, { app: 'a' }), { app: 'a' });
  t.throws(() => mergeLabels({ 'io.kubernetes.pod.name': 'a' }, { 'io.kubernetes.pod.name': 'b' }), { message: /label "io\.kubernetes\.pod\.name" would change/ });
});

test('config: pre_launch_hook and pre_launch_hook_timeout', (t) => {
  t.is(defaultConfig().preLaunchHook, '');
  t.is(defaultConfig().preLaunchHookTimeout, 10);
  const c = parseConfigToml('pre_launch_hook = "/usr/local/bin/hook"\npre_launch_hook_timeout = 2.5');
  t.is(c.preLaunchHook, '/usr/local/bin/hook');
  t.is(c.preLaunchHookTimeout, 2.5);
  t.throws(() => parseConfigToml('pre_launch_hook = "hook"'), { message: /pre_launch_hook: must be an absolute path/ });
  t.throws(() => parseConfigToml('pre_launch_hook_timeout = 0'), { message: /pre_launch_hook_timeout: must be greater than 0/ });
});

const input: HookInput = {
  version: 1,
  kind: 'pod',
  runtimeHandler: '',
  pod: { id: 'p1', metadata: { name: 'web', namespace: 'ns', uid: 'u', attempt: 0 }, hostname: 'web', logDirectory: '', cgroupParent: '', labels: {}, annotations: {} },
};

async function script(t: import('ava').ExecutionContext, body: string): Promise<{ path: string; dir: string }> {
  const dir = await tempDir(t, 'cm-hook-');
  const path = join(dir, 'hook');
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return { path, dir };
}

test('the hook reads the input on stdin, in / with only PATH, and its answer is parsed', async (t) => {
  const { path, dir } = await script(t, `cat > "${'$'}(dirname "$0")/in.json"; env > "${'$'}(dirname "$0")/env"; pwd > "${'$'}(dirname "$0")/pwd"; echo '{"labels":{"seen":"yes"}}'`);
  process.env.CRI_MESOS_HOOK_TEST_SECRET = 'x';
  t.teardown(() => delete process.env.CRI_MESOS_HOOK_TEST_SECRET);
  t.deepEqual(await runHook(path, 5000, input), { env: [], labels: { seen: 'yes' } });
  t.deepEqual(JSON.parse(readFileSync(join(dir, 'in.json'), 'utf8')), input);
  const env = readFileSync(join(dir, 'env'), 'utf8');
  t.regex(env, /^PATH=\/usr\/local\/sbin:/m);
  t.notRegex(env, /CRI_MESOS_HOOK_TEST_SECRET/);
  t.is(readFileSync(join(dir, 'pwd'), 'utf8').trim(), '/');
});

test('a failing hook: FAILED_PRECONDITION with its stderr, trimmed and bounded', async (t) => {
  const { path } = await script(t, `echo "  quota exceeded for team x  " >&2; exit 3`);
  const err = await t.throwsAsync<StatusError>(runHook(path, 5000, input));
  t.is(err?.status, Code.FAILED_PRECONDITION);
  t.is(err?.message, `pre-launch hook ${path} failed with exit status 3: quota exceeded for team x (pod web)`);

  const { path: noisy } = await script(t, `head -c 200000 /dev/zero | tr '\\0' e >&2; exit 1`);
  const long = await t.throwsAsync<StatusError>(runHook(noisy, 5000, input));
  t.regex(long?.message ?? '', /e{1024}… \(\d+ more characters\)/);
  t.true((long?.message.length ?? 0) < 2000);

  const { path: bad } = await script(t, `echo '{"env": 1}'`);
  t.regex((await t.throwsAsync<StatusError>(runHook(bad, 5000, input)))?.message ?? '', /gave bad output: env is neither/);

  const missing = await t.throwsAsync<StatusError>(runHook('/nonexistent/hook', 5000, input));
  t.is(missing?.status, Code.FAILED_PRECONDITION);
  t.regex(missing?.message ?? '', /cannot be run: .*ENOENT/);
});

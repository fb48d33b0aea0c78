// runProgram (src/native/run-program.ts), the daemon's way to run CNI plugins and the pre-launch
// hook without forking itself: real scripts, run through the addon's CLONE_VM|CLONE_VFORK spawn.
import test, { type ExecutionContext } from 'ava';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runProgram } from '../../src/native/run-program.js';
import { tempDir } from '../helpers/suite.js';

async function script(t: ExecutionContext, name: string, body: string): Promise<string> {
  const dir = await tempDir(t, `run-program-${name}-`);
  const file = join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return false;
  }
};

test('stdin in, stdout and stderr out, exactly the env given, exit status, its own session', async (t) => {
  const file = await script(t, 'echo', 'in=$(cat); echo "out:$in"; echo "err:$FOO" >&2; env | sort > "$(dirname "$0")/env"; cut -d" " -f6 /proc/$$/stat > "$(dirname "$0")/sid"; echo $$ > "$(dirname "$0")/pid"; exit 3');
  const r = await runProgram(file, { env: { FOO: 'bar baz', PATH: '/usr/bin:/bin' }, input: 'hello', timeoutMs: 10_000 });
  t.is(r.code, 3);
  t.is(r.signal, null);
  t.is(r.stdout.toString(), 'out:hello\n');
  t.is(r.stderr.toString(), 'err:bar baz\n');
  t.false(r.timedOut);
  const env = readFileSync(join(file, '..', 'env'), 'utf8');
  t.regex(env, /^FOO=bar baz$/m);
  t.notRegex(env, /^HOME=/m, 'nothing of the daemon\'s environment');
  const pid = Number(readFileSync(join(file, '..', 'pid'), 'utf8'));
  t.is(Number(readFileSync(join(file, '..', 'sid'), 'utf8')), pid, 'a session leader');
  t.false(existsSync(`/proc/${pid}`), 'reaped');
});

test('a program that does not read its stdin, and one that prints nothing', async (t) => {
  const r = await runProgram(await script(t, 'quiet', 'exit 0'), { env: {}, input: 'x'.repeat(256 * 1024), timeoutMs: 10_000 });
  t.is(r.code, 0);
  t.is(r.stdout.length, 0);
});

test('at the timeout its whole group is killed, children too', async (t) => {
  const file = await script(t, 'hang', 'sleep 60 & echo $! > "$(dirname "$0")/child"; sleep 60');
  const started = Date.now();
  const r = await runProgram(file, { env: { PATH: '/usr/bin:/bin' }, input: '', timeoutMs: 300, drainMs: 200 });
  t.true(r.timedOut);
  t.is(r.signal, 'SIGKILL');
  t.is(r.code, null);
  t.true(Date.now() - started < 5000);
  const child = Number(readFileSync(join(file, '..', 'child'), 'utf8'));
  await new Promise((r) => setTimeout(r, 100));
  t.false(alive(child), 'the background child is gone too');
});

test('killGroupOnExit: what it left running is killed when it exits; without it, the output is read until the grace', async (t) => {
  const file = await script(t, 'leave', 'sleep 60 & echo $! > "$(dirname "$0")/child"; echo done');
  const r = await runProgram(file, { env: { PATH: '/usr/bin:/bin' }, input: '', timeoutMs: 10_000, killGroupOnExit: true });
  t.is(r.code, 0);
  t.is(r.stdout.toString(), 'done\n');
  await new Promise((r) => setTimeout(r, 100));
  t.false(alive(Number(readFileSync(join(file, '..', 'child'), 'utf8'))));

  const file2 = await script(t, 'leave2', 'sleep 60 & echo $! > "$(dirname "$0")/child"; echo done');
  const started = Date.now();
  const r2 = await runProgram(file2, { env: { PATH: '/usr/bin:/bin' }, input: '', timeoutMs: 10_000, drainMs: 300 });
  t.is(r2.stdout.toString(), 'done\n');
  t.true(Date.now() - started >= 250, 'waited for the pipe the child holds, up to the grace');
  const child = Number(readFileSync(join(file2, '..', 'child'), 'utf8'));
  t.true(alive(child), 'left running');
  process.kill(child, 'SIGKILL');
});

test('maxStdout kills it and says so; maxStderr keeps the first bytes', async (t) => {
  const file = await script(t, 'loud', 'head -c 100000 /dev/zero | tr "\\0" e >&2; while :; do echo xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; done');
  const r = await runProgram(file, { env: { PATH: '/usr/bin:/bin' }, input: '', timeoutMs: 10_000, maxStdout: 4096, maxStderr: 10 });
  t.true(r.tooMuchOutput);
  t.is(r.signal, 'SIGKILL');
  t.true(r.stdout.length <= 4096);
  t.is(r.stderr.toString(), 'eeeeeeeeee');
});

test('a program that cannot be started rejects with its errno', async (t) => {
  const dir = await tempDir(t, 'run-program-none-');
  await t.throwsAsync(runProgram(join(dir, 'missing'), { env: {}, input: '', timeoutMs: 1000 }), { code: 'ENOENT' });
  const notExec = join(dir, 'plain');
  writeFileSync(notExec, 'x');
  await t.throwsAsync(runProgram(notExec, { env: {}, input: '', timeoutMs: 1000 }), { code: 'EACCES' });
});

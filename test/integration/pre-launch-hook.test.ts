// The pre-launch hook (--pre-launch-hook): it sees every pod and container launch as JSON on
// stdin, adds env (seen from inside the container) and labels (seen in the status RPCs); a
// failing or slow hook fails the create with its stderr and leaves nothing behind.
import test from 'ava';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { containerConfig, podConfig } from '../helpers/daemon.js';
import { useDaemon } from '../helpers/suite.js';
import { leftovers } from '../helpers/leaks.js';

// Written before the daemon starts (it checks the hook is an executable file).
const hookDir = mkdtempSync(join(tmpdir(), 'cm-hook-'));
test.after.always(() => rmSync(hookDir, { recursive: true, force: true }));
const hook = join(hookDir, 'hook');
const stdinLog = join(hookDir, 'stdin.log');
const allow = join(hookDir, 'allow');
const slowPids = join(hookDir, 'slow.pids');
// Names with "hookfail" fail (exit 3) and names with "hookslow" hang, unless the allow file is
// there; anything else gets an env var (containers) and a label.
writeFileSync(
  hook,
  `#!/bin/sh
dir=$(dirname "$0")
input=$(cat)
printf '%s\\n' "$input" >> "$dir/stdin.log"
if [ ! -e "$dir/allow" ]; then
  case "$input" in
    *hookfail*) echo "  hook says no: quota exceeded  " >&2; exit 3;;
    *hookslow*) sleep 60 & echo "$$ $!" > "$dir/slow.pids"; wait; exit 0;;
  esac
fi
case "$input" in
  *'"kind":"container"'*) echo '{"env":[{"key":"HOOK_ENV","value":"from the hook"}],"labels":{"hook.example/added":"container"}}';;
  *) echo '{"labels":{"hook.example/added":"pod"}}';;
esac
`,
);
chmodSync(hook, 0o755);

const d = useDaemon('pre-launch hook tests', { flags: ['--pre-launch-hook', hook, '--pre-launch-hook-timeout', '2'] });

interface Rejection {
  code: number;
  details: string;
}

function hookInputs(): { kind: string; pod: { metadata: { name: string }; labels: Record<string, string> }; container?: { metadata: { name: string }; env: unknown[] } }[] {
  return existsSync(stdinLog)
    ? readFileSync(stdinLog, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
}

if (d) {
  test.serial('the hook sees each launch, adds env inside the container and labels to the pod and container', async (t) => {
    const cfg = podConfig('hookok', {}, join(d.logDir, 'hookok'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: cfg });
    t.teardown(() => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }).catch(() => undefined));
    const podStatus = await d.client.call('PodSandboxStatus', { pod_sandbox_id: pod });
    t.deepEqual(podStatus.status.labels, { app: 'hookok', 'hook.example/added': 'pod' });

    const ctr = containerConfig('hooked', ['sleep', '3600'], { envs: [{ key: 'HOOK_ENV', value: Buffer.from('from the request') }, { key: 'MINE', value: Buffer.from('kept') }] });
    const { container_id: id } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: ctr, sandbox_config: cfg });
    await d.client.call('StartContainer', { container_id: id });
    const st = await d.client.call('ContainerStatus', { container_id: id });
    t.deepEqual(st.status.labels, { container: 'hooked', 'hook.example/added': 'container' });
    const listed = await d.client.call('ListContainers', { filter: { label_selector: { 'hook.example/added': 'container' } } });
    t.deepEqual(
      listed.containers.map((c: { id: string }) => c.id),
      [id],
    );
    const r = await d.client.call('ExecSync', { container_id: id, cmd: ['env'], timeout: 10 });
    t.is(r.exit_code, 0);
    const env = Buffer.from(r.stdout).toString('utf8').split('\n');
    // The hook's value wins over the request's, as Mesos' decorator env does.
    t.true(env.includes('HOOK_ENV=from the hook'), env.join('\n'));
    t.true(env.includes('MINE=kept'));

    const inputs = hookInputs().filter((i) => i.pod.metadata.name === 'hookok');
    t.deepEqual(
      inputs.map((i) => [i.kind, i.container?.metadata.name]),
      [
        ['pod', undefined],
        ['container', 'hooked'],
      ],
    );
    // A container's input carries the pod as it was recorded (with the label the hook gave it) and the request's env.
    t.is(inputs[1]!.pod.labels['hook.example/added'], 'pod');
    t.deepEqual(inputs[1]!.container!.env, [
      { key: 'HOOK_ENV', value: 'from the request' },
      { key: 'MINE', value: 'kept' },
    ]);
  });

  test.serial('a failing hook fails RunPodSandbox and CreateContainer with its stderr and leaves nothing', async (t) => {
    const okCfg = podConfig('hookhost', {}, join(d.logDir, 'hookhost'));
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: okCfg });
    t.teardown(() => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }).catch(() => undefined));
    const before = await leftovers(d);
    const pods = (await d.client.call('ListPodSandbox', {})).items.length;
    const containers = (await d.client.call('ListContainers', {})).containers.length;

    const badPod = podConfig('hookfail-p');
    const e1 = (await t.throwsAsync(d.client.call('RunPodSandbox', { config: badPod }))) as unknown as Rejection;
    t.is(e1.code, status.FAILED_PRECONDITION);
    t.is(e1.details, `pre-launch hook ${hook} failed with exit status 3: hook says no: quota exceeded (pod hookfail-p)`);

    const badCtr = containerConfig('hookfail-c', ['sleep', '3600']);
    const e2 = (await t.throwsAsync(d.client.call('CreateContainer', { pod_sandbox_id: pod, config: badCtr, sandbox_config: okCfg }))) as unknown as Rejection;
    t.is(e2.code, status.FAILED_PRECONDITION);
    t.is(e2.details, `pre-launch hook ${hook} failed with exit status 3: hook says no: quota exceeded (container hookfail-c)`);

    // No record, no cgroup, no runtime dir, no mount, no process.
    t.is((await d.client.call('ListPodSandbox', {})).items.length, pods);
    t.is((await d.client.call('ListContainers', {})).containers.length, containers);
    const after = await leftovers(d);
    for (const k of ['records', 'cgroups', 'runtimeDirs', 'mounts', 'provisioned', 'processes'] as const) t.deepEqual(after[k], before[k], k);

    // No name is held: once the hook allows them, the same names are created.
    writeFileSync(allow, '');
    t.teardown(() => rmSync(allow, { force: true }));
    const { pod_sandbox_id: again } = await d.client.call('RunPodSandbox', { config: badPod });
    await d.client.call('RemovePodSandbox', { pod_sandbox_id: again });
    const { container_id: ctr } = await d.client.call('CreateContainer', { pod_sandbox_id: pod, config: badCtr, sandbox_config: okCfg });
    t.is((await d.client.call('ContainerStatus', { container_id: ctr })).status.metadata.name, 'hookfail-c');
  });

  test.serial('a hook that outlasts the timeout is killed with its children and the create fails', async (t) => {
    const okCfg = podConfig('hookhost2');
    const { pod_sandbox_id: pod } = await d.client.call('RunPodSandbox', { config: okCfg });
    t.teardown(() => d.client.call('RemovePodSandbox', { pod_sandbox_id: pod }).catch(() => undefined));
    const before = await leftovers(d);

    for (const [rpc, req, what] of [
      ['RunPodSandbox', { config: podConfig('hookslow-p') }, 'pod hookslow-p'],
      ['CreateContainer', { pod_sandbox_id: pod, config: containerConfig('hookslow-c', ['true']), sandbox_config: okCfg }, 'container hookslow-c'],
    ] as const) {
      rmSync(slowPids, { force: true });
      const started = Date.now();
      const e = (await t.throwsAsync(d.client.call(rpc, req))) as unknown as Rejection;
      const took = Date.now() - started;
      t.is(e.code, status.FAILED_PRECONDITION, rpc);
      t.is(e.details, `pre-launch hook ${hook} timed out after 2 s and was killed: (no stderr) (${what})`);
      t.true(took >= 1900 && took < 15_000, `${rpc} took ${took} ms`);
      // The shell and the sleep it started are gone (killed as a process group).
      const pids = readFileSync(slowPids, 'utf8').trim().split(' ').map(Number);
      t.is(pids.length, 2);
      for (const pid of pids) {
        const deadline = Date.now() + 5000;
        while (alive(pid) && Date.now() < deadline) await sleep(50);
        t.false(alive(pid), `hook process ${pid} is still there`);
      }
    }
    t.false((await d.client.call('ListPodSandbox', {})).items.some((p: { metadata: { name: string } }) => p.metadata.name === 'hookslow-p'));
    t.false((await d.client.call('ListContainers', {})).containers.some((c: { metadata: { name: string } }) => c.metadata.name === 'hookslow-c'));
    const after = await leftovers(d);
    for (const k of ['records', 'cgroups', 'runtimeDirs', 'mounts', 'provisioned', 'processes'] as const) t.deepEqual(after[k], before[k], k);
  });
}

/** A process that exists and is not a zombie waiting to be reaped. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

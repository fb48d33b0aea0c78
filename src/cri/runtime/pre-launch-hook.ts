// The pre-launch hook (config pre_launch_hook), as Mesos' docker pre-launch hook
// (HookManager::slavePreLaunchDockerTaskExecutorDecorator): an executable run before every
// launch, which sees what is about to run and may add environment variables and labels.
//
// Both containerizers get it, and the labels it adds land in the CRI records, which
// ListContainers, ContainerStatus and PodSandboxStatus report and recovery reads back. Mesos
// pods: it runs in the CRI layer before RunPodSandbox and CreateContainer hand the launch over.
// Docker pods: the Docker containerizer calls it (DockerLaunch.preLaunch) in the seed's order,
// after the image is in the Engine and before anything runs.
//
// In: one JSON object on stdin (HookInput below), then EOF.
// Out: nothing (no changes), or one JSON object on stdout (HookOutput below).
// A non-zero exit, a signal, a timeout (pre_launch_hook_timeout), output that is not such an
// object, or a hook that cannot be run fails the create with FAILED_PRECONDITION: the operator's
// hook refused the launch, and the same request fails again until the hook or the request
// changes. The message carries the hook's stderr, trimmed and bounded.
import { accessSync, constants, statSync } from 'node:fs';
import type { PodSandboxConfig__Output } from '../../../api/generated/runtime/v1/PodSandboxConfig.js';
import type { ContainerConfig__Output } from '../../../api/generated/runtime/v1/ContainerConfig.js';
import type { KeyValue__Output } from '../../../api/generated/runtime/v1/KeyValue.js';
import type { SandboxRecord } from '../../store/metadata.js';
import { failedPrecondition } from '../../errors.js';
import type { RuntimeContext } from '../context.js';
import { podFields } from '../../log.js';
import { runProgram, type RunResult } from '../../native/run-program.js';

/** Schema version of HookInput; a change that breaks hooks bumps it. */
export const HOOK_INPUT_VERSION = 1;

interface HookPod {
  id: string;
  metadata: { name: string; namespace: string; uid: string; attempt: number };
  hostname: string;
  logDirectory: string;
  cgroupParent: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

interface HookContainer {
  id: string;
  metadata: { name: string; attempt: number };
  /** the image as the request names it, and the id it resolved to */
  image: { ref: string; id: string };
  command: string[];
  args: string[];
  workingDir: string;
  env: { key: string; value: string }[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  logPath: string;
  tty: boolean;
}

/** What the hook reads on stdin. `container` is there for kind "container" only. */
export interface HookInput {
  version: number;
  kind: 'pod' | 'container';
  /** the pod's runtime_handler ('' is the default, mesos) */
  runtimeHandler: string;
  pod: HookPod;
  container?: HookContainer;
}

/** What the hook may print: env added to a container (over the config's), labels added to the pod or container. */
export interface HookOutput {
  env: { key: string; value: string }[];
  labels: Record<string, string>;
}

/** The hook's environment: nothing of the daemon's but a PATH. */
const HOOK_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' };
/** More stdout than this is not a hook's answer. */
const MAX_STDOUT = 1024 * 1024;
/** stderr kept, and how much of it an error message quotes. */
const MAX_STDERR = 64 * 1024;
const STDERR_IN_MESSAGE = 1024;

/** Refuses, at daemon start, a hook that is not an executable file. */
export function checkPreLaunchHook(path: string): void {
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
    if (isFile) accessSync(path, constants.X_OK);
  } catch (err) {
    throw new Error(`pre_launch_hook ${path}: ${(err as Error).message}`);
  }
  if (!isFile) throw new Error(`pre_launch_hook ${path}: not a regular file`);
}

const text = (v: Buffer | string): string => (Buffer.isBuffer(v) ? v.toString('utf8') : v);

function hookPod(id: string, config: PodSandboxConfig__Output): HookPod {
  const m = config.metadata;
  return {
    id,
    metadata: { name: m?.name ?? '', namespace: m?.namespace ?? '', uid: m?.uid ?? '', attempt: m?.attempt ?? 0 },
    hostname: config.hostname,
    logDirectory: config.log_directory,
    cgroupParent: config.linux?.cgroup_parent ?? '',
    labels: { ...config.labels },
    annotations: { ...config.annotations },
  };
}

export function podHookInput(id: string, runtimeHandler: string, config: PodSandboxConfig__Output): HookInput {
  return { version: HOOK_INPUT_VERSION, kind: 'pod', runtimeHandler, pod: hookPod(id, config) };
}

export function containerHookInput(id: string, sandbox: SandboxRecord, config: ContainerConfig__Output, image: { ref: string; id: string }): HookInput {
  return {
    version: HOOK_INPUT_VERSION,
    kind: 'container',
    runtimeHandler: sandbox.runtimeHandler,
    pod: hookPod(sandbox.id, sandbox.config),
    container: {
      id,
      metadata: { name: config.metadata?.name ?? '', attempt: config.metadata?.attempt ?? 0 },
      image,
      command: [...config.command],
      args: [...config.args],
      workingDir: config.working_dir,
      env: config.envs.map((e) => ({ key: e.key, value: text(e.value) })),
      labels: { ...config.labels },
      annotations: { ...config.annotations },
      logPath: config.log_path,
      tty: config.tty,
    },
  };
}

/**
 * The hook's stdout as a HookOutput. Empty (or blank) is no change. env is a list of
 * {key, value} or an object of key → value; labels an object of key → value; no other keys.
 * Throws an Error saying what is wrong.
 */
export function parseHookOutput(stdout: string): HookOutput {
  const out: HookOutput = { env: [], labels: {} };
  if (stdout.trim() === '') return out;
  let doc: unknown;
  try {
    doc = JSON.parse(stdout);
  } catch (err) {
    throw new Error(`output is not JSON (${(err as Error).message})`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('output is not a JSON object');
  for (const k of Object.keys(doc)) if (k !== 'env' && k !== 'labels') throw new Error(`output has an unknown key "${k}" (known: env, labels)`);
  const { env, labels } = doc as { env?: unknown; labels?: unknown };
  const str = (v: unknown, what: string): string => {
    if (typeof v !== 'string') throw new Error(`${what} is not a string`);
    if (v.includes('\0')) throw new Error(`${what} contains a NUL byte`);
    return v;
  };
  const envKey = (k: unknown, what: string): string => {
    const s = str(k, what);
    if (s === '' || s.includes('=')) throw new Error(`${what} "${s}" is not an environment variable name (empty or with "=")`);
    return s;
  };
  if (Array.isArray(env)) {
    env.forEach((e: unknown, i) => {
      if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new Error(`env[${i}] is not an object {"key": ..., "value": ...}`);
      const { key, value } = e as { key?: unknown; value?: unknown };
      out.env.push({ key: envKey(key, `env[${i}].key`), value: str(value, `env[${i}].value`) });
    });
  } else if (typeof env === 'object' && env !== null) {
    for (const [k, v] of Object.entries(env)) out.env.push({ key: envKey(k, 'env key'), value: str(v, `env["${k}"]`) });
  } else if (env !== undefined) {
    throw new Error('env is neither a list of {"key", "value"} nor an object of key → value');
  }
  if (typeof labels === 'object' && labels !== null && !Array.isArray(labels)) {
    for (const [k, v] of Object.entries(labels)) {
      if (k === '') throw new Error('labels has an empty key');
      out.labels[str(k, 'label key')] = str(v, `labels["${k}"]`);
    }
  } else if (labels !== undefined) {
    throw new Error('labels is not an object of key → value');
  }
  return out;
}

/**
 * The config's labels plus the hook's. A hook adds labels; it may not change one the request
 * set (the kubelet finds its pods and containers by them).
 */
export function mergeLabels(labels: Record<string, string>, added: Record<string, string>): Record<string, string> {
  for (const [k, v] of Object.entries(added)) {
    if (k in labels && labels[k] !== v) throw new Error(`output label "${k}" would change the request's value "${labels[k]}" to "${v}"; the hook may only add labels`);
  }
  return { ...labels, ...added };
}

/** Bounded, trimmed stderr for an error message. */
function quote(stderr: string): string {
  const s = stderr.trim();
  if (!s) return '(no stderr)';
  return s.length > STDERR_IN_MESSAGE ? `${s.slice(0, STDERR_IN_MESSAGE)}… (${s.length - STDERR_IN_MESSAGE} more characters)` : s;
}

/**
 * Runs the hook once: its own session and process group, cwd /, HOOK_ENV, the input on stdin
 * and stdin closed. At the timeout the whole group is killed (SIGKILL); when the hook exits,
 * whatever it left in its group is killed too, so nothing it started outlives it.
 */
export async function runHook(path: string, timeoutMs: number, input: HookInput): Promise<HookOutput> {
  const fail = (why: string, stderr?: string) =>
    failedPrecondition(`pre-launch hook ${path} ${why}${stderr !== undefined ? `: ${quote(stderr)}` : ''} (${input.kind} ${input.kind === 'pod' ? input.pod.metadata.name : (input.container?.metadata.name ?? '')})`);
  let r: RunResult;
  try {
    r = await runProgram(path, {
      env: HOOK_ENV,
      cwd: '/',
      input: JSON.stringify(input) + '\n',
      timeoutMs,
      maxStdout: MAX_STDOUT,
      maxStderr: MAX_STDERR,
      // The leader is gone: so is everything it left in its group (which would hold our pipes open).
      killGroupOnExit: true,
    });
  } catch (e) {
    throw fail(`cannot be run: ${(e as Error).message}`);
  }
  const stderr = r.stderr.toString('utf8');
  if (r.timedOut) throw fail(`timed out after ${timeoutMs / 1000} s and was killed`, stderr);
  if (r.tooMuchOutput) throw fail(`printed more than ${MAX_STDOUT} bytes on stdout`, stderr);
  if (r.signal) throw fail(`was killed by ${r.signal}`, stderr);
  if (r.code !== 0) throw fail(`failed with exit status ${r.code}`, stderr);
  try {
    return parseHookOutput(r.stdout.toString('utf8'));
  } catch (e) {
    throw fail(`gave bad output: ${(e as Error).message}`);
  }
}

/** RunPodSandbox: the pod's labels after the hook (its env, if any, is logged and dropped). */
export async function podPreLaunchHook(ctx: RuntimeContext, id: string, runtimeHandler: string, config: PodSandboxConfig__Output): Promise<Record<string, string>> {
  const hook = ctx.config.preLaunchHook;
  if (!hook) return config.labels;
  const out = await runHook(hook, ctx.config.preLaunchHookTimeout * 1000, podHookInput(id, runtimeHandler, config));
  if (out.env.length) ctx.log.warn('pre-launch hook env is for containers; a pod has no environment, ignored', { pod: id, ...podFields(config.metadata), keys: out.env.map((e) => e.key) });
  return applyLabels(hook, config.labels, out.labels);
}

/** CreateContainer: the container's config with the hook's env appended (it wins over the request's) and its labels added. */
export async function containerPreLaunchHook(
  ctx: RuntimeContext,
  id: string,
  sandbox: SandboxRecord,
  config: ContainerConfig__Output,
  image: { ref: string; id: string },
): Promise<ContainerConfig__Output> {
  const hook = ctx.config.preLaunchHook;
  if (!hook) return config;
  const out = await runHook(hook, ctx.config.preLaunchHookTimeout * 1000, containerHookInput(id, sandbox, config, image));
  if (!out.env.length && !Object.keys(out.labels).length) return config;
  const envs: KeyValue__Output[] = [...config.envs, ...out.env.map((e) => ({ key: e.key, value: Buffer.from(e.value, 'utf8') }))];
  return { ...config, envs, labels: applyLabels(hook, config.labels, out.labels) };
}

function applyLabels(hook: string, labels: Record<string, string>, added: Record<string, string>): Record<string, string> {
  try {
    return mergeLabels(labels, added);
  } catch (e) {
    throw failedPrecondition(`pre-launch hook ${hook} gave bad output: ${(e as Error).message}`);
  }
}

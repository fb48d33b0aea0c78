// Runs `cri-mesos agent` against a TestDaemon for the agent's integration tests: in-process
// (Agent.start) or as a child process (to kill -9 it), with its own manifest dir, root, pod logs
// dir, node name and status port. Its --cgroup-root is a sibling of the daemon's cgroup root, as
// the kubelet's /kubepods is of the runtime's (inside it, the daemon's recovery would take the
// kubepods cgroups for orphans); useAgentCgroups sweeps it when the file is done.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import test from 'ava';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, type AgentOptions } from '../../src/agent/agent.js';
import type { Pod } from '../../src/agent/types.js';
import { createLogger } from '../../src/log.js';
import winston from 'winston';
import { Writable } from 'node:stream';
import { projectRoot } from '../../src/util/paths.js';
import { sweep, type TestDaemon } from './daemon.js';

export interface AgentDirs {
  dir: string;
  manifests: string;
  root: string;
  podLogsDir: string;
  nodeName: string;
}

/** A free TCP port on 127.0.0.1 (for a child agent's status address). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The agents' --cgroup-root for a daemon: <daemon cgroup root>-agent. */
export function agentCgroupRoot(d: TestDaemon): string {
  return `${d.cgroupRoot}-agent`;
}

/** After the file's tests (and its daemon's teardown): kill and remove what is left in the agents' cgroup root. */
export function useAgentCgroups(d: TestDaemon): void {
  test.after.always(async () => {
    await sweep(agentCgroupRoot(d), mkdtempSync(join(tmpdir(), 'cm-agent-sweep-')));
  });
}

/** Dirs for one agent inside the daemon's temp dir (removed with it). */
export function agentDirs(d: TestDaemon, name: string): AgentDirs {
  const dir = join(d.dir, `agent-${name}-${randomBytes(3).toString('hex')}`);
  const dirs = { dir, manifests: join(dir, 'manifests'), root: join(dir, 'root'), podLogsDir: join(dir, 'pod-logs'), nodeName: `node-${name}` };
  for (const p of [dirs.manifests, dirs.root, dirs.podLogsDir]) mkdirSync(p, { recursive: true });
  return dirs;
}

export function agentOptions(d: TestDaemon, dirs: AgentDirs, extra: Partial<AgentOptions> = {}): AgentOptions {
  return {
    manifests: dirs.manifests,
    runtimeEndpoint: `unix://${d.socket}`,
    root: dirs.root,
    statusAddress: '127.0.0.1:0',
    nodeName: dirs.nodeName,
    nodeIP: '127.0.0.1',
    podLogsDir: dirs.podLogsDir,
    cgroupRoot: `/${agentCgroupRoot(d)}`,
    resolvConf: '/etc/resolv.conf',
    containerLogMaxSize: '10Mi',
    containerLogMaxFiles: 5,
    eventedPleg: false,
    fileCheckFrequencyMs: 2_000,
    ...extra,
  };
}

/** An in-process agent; on teardown it stops and every pod it ran is removed through the daemon. */
export async function startAgent(t: ExecutionContext, d: TestDaemon, dirs: AgentDirs, extra: Partial<AgentOptions> = {}): Promise<Agent> {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', format: 'text' });
  // Kept in memory and shown when the test fails, not written to the test's output.
  log.clear();
  log.add(new winston.transports.Stream({ stream: new Writable({ write: (chunk, _enc, cb) => (lines.push(String(chunk).trimEnd()), cb()) }) }));
  const agent = await Agent.start(agentOptions(d, dirs, extra), log);
  (agent as unknown as { logLines: string[] }).logLines = lines;
  t.teardown(async () => {
    if (!t.passed) t.log(lines.slice(-60).join('\n'));
    // The test's pods go as a user would remove them: their manifests go.
    for (const f of readdirSync(dirs.manifests)) rmSync(join(dirs.manifests, f), { force: true });
    await until('the agent to remove its pods', () => agent.pods().length === 0, 60_000).catch(() => undefined);
    await agent.settled();
    await agent.stop();
  });
  return agent;
}

/** The agent's log lines (in-process agents). */
export function agentLog(agent: Agent): string[] {
  return (agent as unknown as { logLines: string[] }).logLines;
}

export function writeManifest(dirs: AgentDirs, file: string, text: string): string {
  const path = join(dirs.manifests, file);
  // As editors and config tools should: write aside, then rename into place.
  const tmp = join(dirs.manifests, `.${file}.tmp`);
  writeFileSync(tmp, text);
  renameSync(tmp, path);
  return path;
}

export function removeManifest(dirs: AgentDirs, file: string): void {
  rmSync(join(dirs.manifests, file), { force: true });
}

/** GET /pods of an agent at 127.0.0.1:port. */
export async function getPods(port: number): Promise<Pod[]> {
  const res = await fetch(`http://127.0.0.1:${port}/pods`);
  return ((await res.json()) as { items: Pod[] }).items;
}

/** Polls until `fn` returns something truthy; the last value seen is in the error. */
export async function until<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)?.slice(0, 2000)})`);
    await sleep(everyMs);
  }
}

/** The pod named <name>-<node> in the agent's pods. */
export function podNamed(pods: Pod[], dirs: AgentDirs, name: string): Pod | undefined {
  return pods.find((p) => p.metadata.name === `${name}-${dirs.nodeName}`);
}

/** A child-process agent (`cri-mesos agent` from the sources), which a test may kill -9. */
export class AgentProcess {
  private proc?: ChildProcess;
  output = '';

  constructor(
    readonly d: TestDaemon,
    readonly dirs: AgentDirs,
    readonly port: number,
    readonly flags: string[] = [],
  ) {}

  start(): void {
    const args = [
      '--import',
      'tsx',
      join(projectRoot(), 'src', 'cli.ts'),
      'agent',
      '--manifests',
      this.dirs.manifests,
      '--runtime-endpoint',
      `unix://${this.d.socket}`,
      '--root',
      this.dirs.root,
      '--status-address',
      `127.0.0.1:${this.port}`,
      '--node-name',
      this.dirs.nodeName,
      '--node-ip',
      '127.0.0.1',
      '--pod-logs-dir',
      this.dirs.podLogsDir,
      '--cgroup-root',
      `/${agentCgroupRoot(this.d)}`,
      '--file-check-frequency',
      '2s',
      ...this.flags,
    ];
    const p = spawn(process.execPath, args, { cwd: projectRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout!.on('data', (b: Buffer) => (this.output += b.toString()));
    p.stderr!.on('data', (b: Buffer) => (this.output += b.toString()));
    this.proc = p;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    await until('the agent to serve /healthz', async () => (await fetch(`http://127.0.0.1:${this.port}/healthz`)).ok, timeoutMs);
  }

  /** kill -9 (only our own child). */
  async kill9(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await Promise.race([exited, sleep(10_000)]);
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      await exited;
    }
  }
}

// Daemon configuration: embedded defaults < TOML file < command-line flags.
import { readFileSync, existsSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';

export interface DaemonConfig {
  /** unix socket the CRI server listens on */
  socket: string;
  /** persistent state: checkpoints, images, provisioner */
  workDir: string;
  /** volatile state (tmpfs): pids, FIFOs, status files */
  runtimeDir: string;
  /** cgroup root name under every hierarchy */
  cgroupRoot: string;
  /** containerizers, in the order they are asked to claim a launch */
  containerizers: string[];
  /** launcher: linux (freezer cgroup) or posix (process groups) */
  launcher: 'linux' | 'posix';
  logLevel: string;
  logFormat: 'text' | 'json';
  /** size of a pod's private /dev/shm in bytes */
  shmSize: number;
  /** seconds the helper may take to set a container up before Create fails */
  launchTimeoutSeconds: number;
}

export const DEFAULT_CONFIG_PATH = '/etc/cri-mesos/config.toml';

export function defaultConfig(): DaemonConfig {
  return {
    socket: '/run/cri-mesos/cri-mesos.sock',
    workDir: '/var/lib/cri-mesos',
    runtimeDir: '/run/cri-mesos',
    cgroupRoot: 'cri-mesos',
    containerizers: ['mesos'],
    launcher: 'linux',
    logLevel: 'info',
    logFormat: 'text',
    shmSize: 64 * 1024 * 1024,
    launchTimeoutSeconds: 60,
  };
}

const KNOWN_CONTAINERIZERS = new Set(['mesos', 'docker']);

/** TOML keys are snake_case and mirror the kebab-case flags one to one. */
const TOML_KEYS: Record<string, keyof DaemonConfig> = {
  socket: 'socket',
  work_dir: 'workDir',
  runtime_dir: 'runtimeDir',
  cgroup_root: 'cgroupRoot',
  containerizers: 'containerizers',
  launcher: 'launcher',
  log_level: 'logLevel',
  log_format: 'logFormat',
  shm_size: 'shmSize',
  launch_timeout_seconds: 'launchTimeoutSeconds',
};

export function parseConfigToml(text: string, base: DaemonConfig = defaultConfig()): DaemonConfig {
  const doc = parseToml(text) as Record<string, unknown>;
  const out: DaemonConfig = { ...base };
  for (const [key, value] of Object.entries(doc)) {
    const field = TOML_KEYS[key];
    if (!field) throw new Error(`config: unknown key "${key}"`);
    assign(out, field, value, `config key "${key}"`);
  }
  return validateConfig(out);
}

export function loadConfig(path: string | undefined, overrides: Partial<Record<keyof DaemonConfig, unknown>>): DaemonConfig {
  let cfg = defaultConfig();
  const file = path ?? DEFAULT_CONFIG_PATH;
  if (existsSync(file)) cfg = parseConfigToml(readFileSync(file, 'utf8'), cfg);
  else if (path) throw new Error(`config file ${path} does not exist`);
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) continue;
    assign(cfg, k as keyof DaemonConfig, v, `flag --${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`);
  }
  return validateConfig(cfg);
}

function assign(cfg: DaemonConfig, field: keyof DaemonConfig, value: unknown, what: string): void {
  const current = cfg[field];
  if (Array.isArray(current)) {
    const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value;
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) throw new Error(`${what}: expected a list of strings`);
    (cfg as unknown as Record<string, unknown>)[field] = list;
  } else if (typeof current === 'number') {
    const n = typeof value === 'string' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new Error(`${what}: expected a non-negative number`);
    (cfg as unknown as Record<string, unknown>)[field] = n;
  } else {
    if (typeof value !== 'string') throw new Error(`${what}: expected a string`);
    (cfg as unknown as Record<string, unknown>)[field] = value;
  }
}

export function validateConfig(cfg: DaemonConfig): DaemonConfig {
  if (cfg.containerizers.length === 0) throw new Error('containerizers: at least one is needed');
  const seen = new Set<string>();
  for (const c of cfg.containerizers) {
    if (!KNOWN_CONTAINERIZERS.has(c)) throw new Error(`containerizers: unknown containerizer "${c}" (known: mesos, docker)`);
    if (seen.has(c)) throw new Error(`containerizers: "${c}" is listed twice`);
    seen.add(c);
  }
  if (cfg.launcher !== 'linux' && cfg.launcher !== 'posix') throw new Error(`launcher: must be linux or posix, not "${cfg.launcher}"`);
  if (cfg.logFormat !== 'text' && cfg.logFormat !== 'json') throw new Error(`log_format: must be text or json`);
  if (!/^[\w.-]+(\/[\w.-]+)*$/.test(cfg.cgroupRoot)) throw new Error(`cgroup_root: "${cfg.cgroupRoot}" is not a relative cgroup path`);
  for (const k of ['socket', 'workDir', 'runtimeDir'] as const) {
    if (!cfg[k].startsWith('/')) throw new Error(`${k}: must be an absolute path`);
  }
  return cfg;
}

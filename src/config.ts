// Daemon configuration: embedded defaults < TOML file < drop-ins (config.d/*.toml, in lexical
// order, as CRI-O's) < command-line flags. Every value remembers where it came from.
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parseListenAddress } from './metrics/address.js';

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
  /** the Docker Engine's socket (unix:///path) the docker containerizer talks to */
  dockerHost: string;
  /**
   * Executor mode A (Mesos' --docker_mesos_image): the daemon runs in a docker container of this
   * image, and each docker-executor is started in a container of it instead of forked. '' = mode B.
   */
  dockerMesosImage: string;
  /** launcher: linux (freezer cgroup) or posix (process groups) */
  launcher: 'linux' | 'posix';
  logLevel: string;
  logFormat: 'text' | 'json';
  /** size of a pod's private /dev/shm in bytes */
  shmSize: number;
  /** seconds the helper may take to set a container up before Create fails */
  launchTimeoutSeconds: number;
  /**
   * Pause helpers kept cloned in a pod's namespaces and waiting for a pod (linux launcher on
   * cgroup v1 only, pods that join no namespace): RunPodSandbox hands one over instead of cloning.
   * 0 turns the pool off.
   */
  podPoolSize: number;
  /**
   * Turn on the kernel's cgroup "favordynmods" mode (host-wide) by mounting a
   * tiny named cgroup v1 hierarchy with that option: moving a process into a
   * cgroup then no longer waits for an RCU grace period (5-25 ms here), at the
   * cost of a slightly slower fork for every process on the host.
   */
  cgroupFavorDynmods: boolean;
  /**
   * Serve the CRI socket through cri-mesos's own HTTP/2 front (src/cri/h2front)
   * rather than grpc-js's listener. The front lets gRPC clients older than
   * grpc-go 1.57 (kubelet and crictl up to 1.28) connect: they send the socket
   * path as :authority, which Node's HTTP/2 layer refuses. false is there to
   * measure what the front costs.
   */
  criFront: boolean;
  /**
   * GetContainerEvents: events one subscriber may have unsent before it is cut off with
   * RESOURCE_EXHAUSTED (a slow reader never holds the runtime back).
   */
  eventsBuffer: number;
  /**
   * The stats sampler's window (a Go duration, default 1s as containerd's stats_collect_period):
   * how often the usage of every running container and ready pod is read, and the span
   * usage_nano_cores averages over.
   */
  statsCollectPeriod: string;
  /** image registries: mirrors, insecure hosts, pull limits (TOML table [registry]) */
  registries: RegistriesConfig;
  /**
   * Address the streaming server (Exec, Attach, PortForward URLs) listens on. Loopback by
   * default, as containerd's: the kubelet proxies the streams, so nothing needs more.
   */
  streamServerAddress: string;
  /** its TCP port; 0 picks a free one at every start */
  streamServerPort: number;
  /** a stream with no traffic for this long is closed (Go duration: "4h", "30m", "1h30m", "90s") */
  streamIdleTimeout: string;
  /** PEM certificate and key: serve the streams over TLS (both or neither) */
  streamTlsCert: string;
  streamTlsKey: string;
  /** CNI network configs: the first valid .conflist/.conf/.json in lexical order is used (watched) */
  cniConfDir: string;
  /** where CNI plugin binaries are looked for, in order (also CNI_PATH) */
  cniBinDirs: string[];
  /**
   * containerd's conf_template: a conflist template ({{.PodCIDR}}, {{.PodCIDRRanges}}, {{.Routes}};
   * network/conf-template.ts); while no valid config is loaded, UpdateRuntimeConfig's pod CIDR
   * renders it into the conf dir. '' = off.
   */
  cniConfTemplate: string;
  /**
   * A container with no seccomp profile (no `seccomp` message and an empty
   * `seccomp_profile_path`) gets RuntimeDefault rather than none (CRI-O's
   * seccomp_use_default_when_empty; the kubelet always sends an explicit type).
   */
  seccompDefault: boolean;
  /**
   * An executable run before every pod and container launch (both containerizers), as Mesos'
   * docker pre-launch hook: the pod and container config as JSON on stdin, env and labels to
   * add as JSON on stdout (src/cri/runtime/pre-launch-hook.ts). '' = none.
   */
  preLaunchHook: string;
  /** seconds the hook may run before it is killed and the create fails */
  preLaunchHookTimeout: number;
  /**
   * host:port of the Prometheus listener: GET /metrics (prom-client, names cri_mesos_*) and GET
   * /healthz (200 "ok" while the daemon's own Status check passes). '' = off; CRI-O's
   * 127.0.0.1:9090 is the usual value. "[::1]:9090" for IPv6, ":9090" for every address.
   */
  metricsAddress: string;
}

/** TOML `[registry]`. */
export interface RegistriesConfig {
  /**
   * Registry host → mirror endpoints (`https://mirror.example` or
   * `http://127.0.0.1:5000`, optionally with a path prefix), tried in order
   * before the registry itself, like containerd's hosts.toml. `docker.io`
   * names Docker Hub. An explicit `http://` endpoint is plain HTTP by choice.
   */
  mirrors: Record<string, string[]>;
  /**
   * Hosts (`host` or `host:port`) reachable over plain HTTP or TLS without
   * verification: HTTPS is tried first, then HTTP. Loopback hosts
   * (localhost, 127.0.0.0/8, ::1) are always insecure.
   */
  insecure: string[];
  /** A pull fails when no byte arrives for this many seconds (the watchdog restarts on every chunk). */
  pullProgressTimeoutSeconds: number;
  /** Layer downloads per pull running at once. */
  maxConcurrentDownloads: number;
  /**
   * After a host's mirrors, also try the host itself (containerd's default).
   * false keeps pulls of mirrored hosts on their mirrors only.
   */
  fallbackToUpstream: boolean;
  /**
   * Registry host → credentials (containerd's `registry.configs."host".auth`), used when a
   * PullImage carries no auth of its own, and for the Docker Engine's pulls from that host.
   * TOML: `[registry.auths."host"]` with `username` + `password`, `auth` (base64 of
   * user:password) or `identitytoken`.
   */
  auths: Record<string, RegistryAuth>;
}

/** Credentials of one registry host in the config (the CRI AuthConfig's fields). */
export interface RegistryAuth {
  username?: string;
  password?: string;
  auth?: string;
  identityToken?: string;
}

export function defaultRegistriesConfig(): RegistriesConfig {
  return { mirrors: {}, insecure: [], pullProgressTimeoutSeconds: 60, maxConcurrentDownloads: 3, fallbackToUpstream: true, auths: {} };
}

export const DEFAULT_CONFIG_PATH = '/etc/cri-mesos/config.toml';
/** Drop-ins: the config.d directory next to the main file (this one next to the default file). */
export const DEFAULT_CONFIG_DIR = '/etc/cri-mesos/config.d';

export function defaultConfig(): DaemonConfig {
  return {
    socket: '/run/cri-mesos/cri-mesos.sock',
    workDir: '/var/lib/cri-mesos',
    runtimeDir: '/run/cri-mesos',
    cgroupRoot: 'cri-mesos',
    containerizers: ['mesos'],
    dockerHost: 'unix:///var/run/docker.sock',
    dockerMesosImage: '',
    launcher: 'linux',
    logLevel: 'info',
    logFormat: 'text',
    shmSize: 64 * 1024 * 1024,
    launchTimeoutSeconds: 60,
    podPoolSize: 2,
    cgroupFavorDynmods: false,
    criFront: true,
    eventsBuffer: 1000,
    statsCollectPeriod: '1s',
    registries: defaultRegistriesConfig(),
    streamServerAddress: '127.0.0.1',
    streamServerPort: 0,
    streamIdleTimeout: '4h',
    streamTlsCert: '',
    streamTlsKey: '',
    cniConfDir: '/etc/cni/net.d',
    cniBinDirs: ['/opt/cni/bin', '/usr/lib/cni'],
    cniConfTemplate: '',
    seccompDefault: false,
    preLaunchHook: '',
    preLaunchHookTimeout: 10,
    metricsAddress: '',
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
  docker_host: 'dockerHost',
  docker_mesos_image: 'dockerMesosImage',
  launcher: 'launcher',
  log_level: 'logLevel',
  log_format: 'logFormat',
  shm_size: 'shmSize',
  launch_timeout_seconds: 'launchTimeoutSeconds',
  pod_pool_size: 'podPoolSize',
  cgroup_favor_dynmods: 'cgroupFavorDynmods',
  cri_front: 'criFront',
  events_buffer: 'eventsBuffer',
  stats_collect_period: 'statsCollectPeriod',
  stream_server_address: 'streamServerAddress',
  stream_server_port: 'streamServerPort',
  stream_idle_timeout: 'streamIdleTimeout',
  stream_tls_cert: 'streamTlsCert',
  stream_tls_key: 'streamTlsKey',
  cni_conf_dir: 'cniConfDir',
  cni_bin_dirs: 'cniBinDirs',
  cni_conf_template: 'cniConfTemplate',
  seccomp_default: 'seccompDefault',
  pre_launch_hook: 'preLaunchHook',
  pre_launch_hook_timeout: 'preLaunchHookTimeout',
  metrics_address: 'metricsAddress',
};

/**
 * Where each value came from, by TOML key (`registry.<key>` for the `[registry]` table, and
 * `registry.mirrors."<host>"` per mirrored host): "default", the path of the file that set it
 * last, or "flag --<name>".
 */
export type ConfigSources = Record<string, string>;

export interface LoadedConfig {
  config: DaemonConfig;
  sources: ConfigSources;
  /** the files read, in the order they were applied: the main file (when it exists), then the drop-ins */
  files: string[];
}

export function parseConfigToml(text: string, base: DaemonConfig = defaultConfig()): DaemonConfig {
  return validateConfig(applyToml(text, { ...base }, {}, 'config'));
}

/** Set what `text` names in `out` (unvalidated: the merged result is validated once, at the end). */
function applyToml(text: string, out: DaemonConfig, sources: ConfigSources, source: string): DaemonConfig {
  const doc = parseToml(text) as Record<string, unknown>;
  for (const [key, value] of Object.entries(doc)) {
    if (key === 'registry') {
      out.registries = parseRegistriesToml(value, out.registries);
      const t = value as Record<string, unknown>;
      for (const k of Object.keys(t)) {
        if (k !== 'mirrors') sources[`registry.${k}`] = source;
        else for (const host of Object.keys(t.mirrors as object)) sources[`registry.mirrors.${tomlKey(host)}`] = source;
      }
      continue;
    }
    const field = TOML_KEYS[key];
    if (!field) throw new Error(`config: unknown key "${key}"`);
    assign(out, field, value, `config key "${key}"`);
    sources[key] = source;
  }
  return out;
}

/** The drop-in directory: --config-dir if given ('' = none), else config.d next to the main file. */
export function configDirFor(path: string | undefined, configDir: string | undefined): string {
  if (configDir !== undefined) return configDir;
  return path ? join(dirname(path), 'config.d') : DEFAULT_CONFIG_DIR;
}

/** The drop-ins of `dir` in the order they apply: every *.toml file, in lexical (byte) order. */
export function dropIns(dir: string, explicit: boolean): string[] {
  if (!dir) return [];
  if (!existsSync(dir)) {
    if (explicit) throw new Error(`config dir ${dir} does not exist`);
    return [];
  }
  if (!statSync(dir).isDirectory()) throw new Error(`config dir ${dir} is not a directory`);
  return readdirSync(dir)
    .filter((n) => n.endsWith('.toml') && statSync(join(dir, n)).isFile())
    .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    .map((n) => join(dir, n));
}

const FLAG_NAMES = Object.fromEntries(Object.entries(TOML_KEYS).map(([key, field]) => [field, key]));

/**
 * Defaults, then the main file (`path`, else DEFAULT_CONFIG_PATH when it exists), then each
 * drop-in of `configDir` (else config.d next to the main file), then the flags. A file's
 * unknown key or wrong type is an error naming the file; the merged result is validated once.
 */
export function loadConfigWithSources(
  path: string | undefined,
  overrides: Partial<Record<keyof DaemonConfig, unknown>>,
  configDir?: string,
): LoadedConfig {
  const cfg = defaultConfig();
  const sources: ConfigSources = {};
  const files: string[] = [];
  const file = path ?? DEFAULT_CONFIG_PATH;
  if (existsSync(file)) files.push(file);
  else if (path) throw new Error(`config file ${path} does not exist`);
  files.push(...dropIns(configDirFor(path, configDir), configDir !== undefined));
  for (const f of files) {
    try {
      applyToml(readFileSync(f, 'utf8'), cfg, sources, f);
    } catch (err) {
      throw new Error(`${f}: ${(err as Error).message}`);
    }
  }
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) continue;
    const flag = `flag --${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`;
    assign(cfg, k as keyof DaemonConfig, v, flag);
    sources[FLAG_NAMES[k] ?? k] = flag;
  }
  try {
    validateConfig(cfg);
  } catch (err) {
    // Name who set the value the check refused, when one setting did.
    const key = /^([a-z_]+(?:\.[a-z_]+)?):/.exec((err as Error).message)?.[1];
    const from = key && sources[key];
    if (from) throw new Error(`${(err as Error).message} (set by ${from})`);
    throw err;
  }
  for (const key of allKeys(cfg)) sources[key] ??= 'default';
  return { config: cfg, sources, files };
}

export function loadConfig(path: string | undefined, overrides: Partial<Record<keyof DaemonConfig, unknown>>, configDir?: string): DaemonConfig {
  return loadConfigWithSources(path, overrides, configDir).config;
}

/** Every key a source is kept for, in the order `cri-mesos config` prints them. */
function allKeys(cfg: DaemonConfig): string[] {
  return [
    ...Object.keys(TOML_KEYS),
    ...REGISTRY_KEYS.filter((k) => k !== 'mirrors').map((k) => `registry.${k}`),
    ...Object.keys(cfg.registries.mirrors).map((host) => `registry.mirrors.${tomlKey(host)}`),
  ];
}

/** A TOML key: bare when it can be, else a quoted string. */
function tomlKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k);
}

/** A TOML value (JSON's string escapes are all valid in TOML basic strings). */
function tomlValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

/**
 * The merged config as TOML that loads back to the same values, each line ending in a comment
 * that names where its value came from (`cri-mesos config`).
 */
export function renderConfig({ config, sources }: LoadedConfig): string {
  const rows: [string, string][] = [];
  const row = (key: string, value: unknown, source: string | undefined) => rows.push([`${key} = ${tomlValue(value)}`, source ?? 'default']);
  for (const [key, field] of Object.entries(TOML_KEYS)) row(key, config[field], sources[key]);
  const r = config.registries;
  const registry: [string, unknown][] = [
    ['insecure', r.insecure],
    ['pull_progress_timeout_seconds', r.pullProgressTimeoutSeconds],
    ['max_concurrent_downloads', r.maxConcurrentDownloads],
    ['fallback_to_upstream', r.fallbackToUpstream],
  ];
  const width = Math.max(...rows.map(([l]) => l.length), ...registry.map(([k, v]) => `${k} = ${tomlValue(v)}`.length)) + 2;
  const out = rows.map(([l, s]) => `${l.padEnd(width)}# ${s}`);
  out.push('', '[registry]');
  for (const [k, v] of registry) out.push(`${`${k} = ${tomlValue(v)}`.padEnd(width)}# ${sources[`registry.${k}`] ?? 'default'}`);
  out.push('', '[registry.mirrors]');
  for (const [host, eps] of Object.entries(r.mirrors)) {
    out.push(`${`${tomlKey(host)} = ${tomlValue(eps)}`.padEnd(width)}# ${sources[`registry.mirrors.${tomlKey(host)}`] ?? 'default'}`);
  }
  return out.join('\n') + '\n';
}

function assign(cfg: DaemonConfig, field: keyof DaemonConfig, value: unknown, what: string): void {
  const current = cfg[field];
  if (typeof current === 'boolean') {
    const b = value === 'true' || value === true ? true : value === 'false' || value === false ? false : undefined;
    if (b === undefined) throw new Error(`${what}: expected true or false`);
    (cfg as unknown as Record<string, unknown>)[field] = b;
  } else if (Array.isArray(current)) {
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
  if (!/^unix:\/\/\/./.test(cfg.dockerHost)) throw new Error(`docker_host: "${cfg.dockerHost}" must be unix:///path (the Engine's unix socket)`);
  if (cfg.launcher !== 'linux' && cfg.launcher !== 'posix') throw new Error(`launcher: must be linux or posix, not "${cfg.launcher}"`);
  if (cfg.logFormat !== 'text' && cfg.logFormat !== 'json') throw new Error(`log_format: must be text or json`);
  if (!/^[\w.-]+(\/[\w.-]+)*$/.test(cfg.cgroupRoot) || cfg.cgroupRoot.split('/').some((c) => c === '.' || c === '..')) throw new Error(`cgroup_root: "${cfg.cgroupRoot}" is not a relative cgroup path`);
  for (const [k, key] of [['socket', 'socket'], ['workDir', 'work_dir'], ['runtimeDir', 'runtime_dir'], ['cniConfDir', 'cni_conf_dir']] as const) {
    if (!cfg[k].startsWith('/')) throw new Error(`${key}: must be an absolute path`);
  }
  if (cfg.cniBinDirs.length === 0 || cfg.cniBinDirs.some((d) => !d.startsWith('/') || d.includes(':'))) {
    throw new Error('cni_bin_dirs: a list of absolute paths without ":" is needed');
  }
  if (cfg.cniConfTemplate && !cfg.cniConfTemplate.startsWith('/')) throw new Error('cni_conf_template: must be an absolute path');
  if (cfg.preLaunchHook && !cfg.preLaunchHook.startsWith('/')) throw new Error('pre_launch_hook: must be an absolute path');
  if (!(cfg.preLaunchHookTimeout > 0)) throw new Error('pre_launch_hook_timeout: must be greater than 0 seconds');
  validateRegistries(cfg.registries);
  if (!cfg.streamServerAddress || /[\s/]/.test(cfg.streamServerAddress)) throw new Error(`stream_server_address: "${cfg.streamServerAddress}" is not a host or IP address`);
  if (!Number.isInteger(cfg.streamServerPort) || cfg.streamServerPort > 65535) throw new Error('stream_server_port: must be an integer from 0 to 65535');
  parseDuration(cfg.streamIdleTimeout, 'stream_idle_timeout');
  if (!Number.isInteger(cfg.podPoolSize) || cfg.podPoolSize > 16) throw new Error('pod_pool_size: must be an integer from 0 to 16');
  if (!Number.isInteger(cfg.eventsBuffer) || cfg.eventsBuffer < 1) throw new Error('events_buffer: must be an integer of at least 1');
  if (parseDuration(cfg.statsCollectPeriod, 'stats_collect_period') < 100) throw new Error('stats_collect_period: must be at least 100ms');
  if (!cfg.streamTlsCert !== !cfg.streamTlsKey) throw new Error('stream_tls_cert and stream_tls_key: give both or neither');
  if (cfg.metricsAddress) parseListenAddress(cfg.metricsAddress, 'metrics_address');
  return cfg;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration ("4h", "1h30m", "90s", "500ms", "0s") in milliseconds; 0 means none. */
export function parseDuration(text: string, what: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let ms = 0;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = re.exec(text)) !== null) {
    ms += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    end = re.lastIndex;
  }
  if (text === '' || end !== text.length) throw new Error(`${what}: "${text}" is not a duration such as "4h", "30m" or "1h30m"`);
  return ms;
}

const REGISTRY_KEYS = ['mirrors', 'insecure', 'pull_progress_timeout_seconds', 'max_concurrent_downloads', 'fallback_to_upstream', 'auths'];
const AUTH_KEYS: Record<string, keyof RegistryAuth> = { username: 'username', password: 'password', auth: 'auth', identitytoken: 'identityToken' };

/** The `[registry]` table: `mirrors = { "docker.io" = ["http://127.0.0.1:5000"] }`, `insecure = ["myreg:5000"]`, ... */
function parseRegistriesToml(value: unknown, base: RegistriesConfig): RegistriesConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('config key "registry": expected a table');
  const t = value as Record<string, unknown>;
  const out: RegistriesConfig = { ...base, mirrors: { ...base.mirrors }, insecure: [...base.insecure], auths: { ...base.auths } };
  for (const k of Object.keys(t)) if (!REGISTRY_KEYS.includes(k)) throw new Error(`config: unknown key "registry.${k}"`);
  const strings = (v: unknown, what: string): string[] => {
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`config key "${what}": expected a list of strings`);
    return v as string[];
  };
  const num = (v: unknown, what: string): number => {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`config key "${what}": expected a number`);
    return v;
  };
  if (t.mirrors !== undefined) {
    if (typeof t.mirrors !== 'object' || t.mirrors === null || Array.isArray(t.mirrors)) throw new Error('config key "registry.mirrors": expected a table of host = [endpoints]');
    for (const [host, eps] of Object.entries(t.mirrors as Record<string, unknown>)) out.mirrors[host] = strings(eps, `registry.mirrors."${host}"`);
  }
  if (t.insecure !== undefined) out.insecure = strings(t.insecure, 'registry.insecure');
  if (t.pull_progress_timeout_seconds !== undefined) out.pullProgressTimeoutSeconds = num(t.pull_progress_timeout_seconds, 'registry.pull_progress_timeout_seconds');
  if (t.max_concurrent_downloads !== undefined) out.maxConcurrentDownloads = num(t.max_concurrent_downloads, 'registry.max_concurrent_downloads');
  if (t.fallback_to_upstream !== undefined) {
    if (typeof t.fallback_to_upstream !== 'boolean') throw new Error('config key "registry.fallback_to_upstream": expected true or false');
    out.fallbackToUpstream = t.fallback_to_upstream;
  }
  if (t.auths !== undefined) {
    if (typeof t.auths !== 'object' || t.auths === null || Array.isArray(t.auths)) throw new Error('config key "registry.auths": expected a table of host = { username, password, auth, identitytoken }');
    for (const [host, v] of Object.entries(t.auths as Record<string, unknown>)) {
      const what = `registry.auths."${host}"`;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`config key "${what}": expected a table`);
      const a: RegistryAuth = {};
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        const field = AUTH_KEYS[k];
        if (!field) throw new Error(`config: unknown key "${what}.${k}" (known: ${Object.keys(AUTH_KEYS).join(', ')})`);
        if (typeof x !== 'string') throw new Error(`config key "${what}.${k}": expected a string`);
        a[field] = x;
      }
      out.auths[host] = a;
    }
  }
  return out;
}

function validateRegistries(r: RegistriesConfig): void {
  const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?$/;
  for (const [host, eps] of Object.entries(r.mirrors)) {
    if (!HOST.test(host)) throw new Error(`registry.mirrors: "${host}" is not a registry host`);
    for (const ep of eps) {
      let u: URL;
      try {
        u = new URL(ep);
      } catch {
        throw new Error(`registry.mirrors."${host}": "${ep}" is not a URL`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`registry.mirrors."${host}": "${ep}" must be http:// or https://`);
      if (u.search || u.hash || u.username || u.password) throw new Error(`registry.mirrors."${host}": "${ep}" may not carry a query, fragment or credentials`);
    }
  }
  for (const h of r.insecure) if (!HOST.test(h)) throw new Error(`registry.insecure: "${h}" is not a host or host:port`);
  for (const [host, a] of Object.entries(r.auths)) {
    if (!HOST.test(host)) throw new Error(`registry.auths: "${host}" is not a registry host`);
    if (!a.auth && !a.identityToken && !(a.username && a.password)) {
      throw new Error(`registry.auths."${host}": needs username and password, auth or identitytoken`);
    }
    if (a.auth && !Buffer.from(a.auth, 'base64').toString('utf8').includes(':')) throw new Error(`registry.auths."${host}".auth: must be base64 of user:password`);
  }
  if (!(r.pullProgressTimeoutSeconds > 0)) throw new Error('registry.pull_progress_timeout_seconds: must be greater than 0');
  if (!Number.isInteger(r.maxConcurrentDownloads) || r.maxConcurrentDownloads < 1 || r.maxConcurrentDownloads > 32) {
    throw new Error('registry.max_concurrent_downloads: must be an integer from 1 to 32');
  }
}

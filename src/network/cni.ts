// The CNI exec protocol (containernetworking/cni SPEC.md), for the network/cni isolator: a
// plugin is an executable found in the bin dirs, called with CNI_* in its environment and the
// network config on stdin; it answers a result (ADD), nothing (DEL, CHECK) or an error object
// on stdout with a non-zero exit. No Node library for this is kept up, so it lives here, small:
//   - network lists (.conflist) and single configs (.conf) are loaded as lists;
//   - version negotiation: each plugin is asked VERSION once per binary and must support
//     the list's cniVersion;
//   - ADD chains the plugins in order, each getting the previous result as prevResult; DEL
//     runs them in reverse with the cached ADD result; CHECK in order with it;
//   - runtimeConfig carries only the capabilities a plugin declares (as libcni does);
//   - an error object becomes a CniError (a StatusError) carrying the CNI error code.
import { accessSync, constants as fsc, statSync } from 'node:fs';
import { join } from 'node:path';
import { Code, StatusError } from '../errors.js';
import { runProgram, type RunResult } from '../native/run-program.js';

/** One plugin's config inside a list: `type` names the binary. */
export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

/** A network config list, as a .conflist holds it (a .conf is wrapped into one). */
export interface NetworkList {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  plugins: PluginConf[];
}

/** A CNI result (spec 0.3.0 to 1.0.0: interfaces, ips, routes, dns). */
export interface CniResult {
  cniVersion: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number; version?: string }[];
  routes?: { dst: string; gw?: string }[];
  dns?: unknown;
  [key: string]: unknown;
}

/** What one invocation is about (the CNI_* variables but CNI_COMMAND and CNI_PATH). */
export interface Invocation {
  containerId: string;
  netns: string;
  ifName: string;
  /** CNI_ARGS pairs, in order ("IgnoreUnknown=1;K=V;..."). */
  args: [string, string][];
  /** runtimeConfig keys; each plugin gets those its `capabilities` declare. */
  capabilityArgs: Record<string, unknown>;
}

/**
 * A plugin's error object (spec "Error"), or a plugin that broke the protocol (cniCode 999 and
 * beyond are ours: no such binary, bad output, killed). The gRPC code follows the CNI code:
 * 11 (try again later) is UNAVAILABLE; config and version problems are FAILED_PRECONDITION;
 * anything else UNKNOWN, as a failing runc is in containerd.
 */
export class CniError extends StatusError {
  constructor(
    readonly plugin: string,
    readonly cniCode: number,
    readonly msg: string,
    readonly details = '',
  ) {
    super(grpcCodeFor(cniCode), `CNI plugin ${plugin}: ${msg}${details ? ` (${details})` : ''} [CNI error ${cniCode}]`);
    this.name = 'CniError';
  }
}

/** Our codes for protocol failures (the spec reserves 100+ for plugins, 0-99 for itself). */
export const CNI_NOT_FOUND = 1000;
export const CNI_BAD_OUTPUT = 1001;
export const CNI_FAILED = 1002;

function grpcCodeFor(cniCode: number): Code {
  if (cniCode === 11) return Code.UNAVAILABLE;
  if ([1, 2, 4, 6, 7, CNI_NOT_FOUND].includes(cniCode)) return Code.FAILED_PRECONDITION;
  return Code.UNKNOWN;
}

/** Versions this module reads results of (the spec's list up to 1.0.0). */
export const SUPPORTED_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0'];

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

/**
 * Parse a config file's text: a list (`plugins`) or a single plugin config (wrapped into a
 * list, as libcni's ConfListFromConf does). Throws an Error naming the problem.
 */
export function parseNetworkConfig(text: string, isList: boolean): NetworkList {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`invalid JSON: ${(err as Error).message}`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('not a JSON object');
  const o = raw as Record<string, unknown>;
  if (typeof o.name !== 'string' || !o.name) throw new Error('no "name"');
  const cniVersion = typeof o.cniVersion === 'string' && o.cniVersion ? o.cniVersion : '0.1.0';
  if (!SUPPORTED_VERSIONS.includes(cniVersion)) throw new Error(`cniVersion "${cniVersion}" is not one of ${SUPPORTED_VERSIONS.join(', ')}`);
  let plugins: unknown;
  if (isList) {
    plugins = o.plugins;
    if (!Array.isArray(plugins) || plugins.length === 0) throw new Error('"plugins" is missing or empty');
  } else {
    if (typeof o.type !== 'string') throw new Error('no "type"');
    plugins = [o];
  }
  const list = plugins as unknown[];
  list.forEach((p, i) => {
    if (!p || typeof p !== 'object' || typeof (p as PluginConf).type !== 'string' || !(p as PluginConf).type) {
      throw new Error(`plugins[${i}] has no "type"`);
    }
  });
  return { cniVersion, name: o.name, ...(o.disableCheck === true ? { disableCheck: true } : {}), plugins: list as PluginConf[] };
}

/** Runs plugins found in `binDirs`. */
export class CniExec {
  /** binary path + mtime → its supported versions (VERSION is asked once per binary). */
  private readonly versions = new Map<string, string[]>();

  constructor(
    readonly binDirs: string[],
    private readonly timeoutMs = 60_000,
  ) {}

  /** The plugin's executable, first in bin dir order; throws CniError CNI_NOT_FOUND. */
  find(type: string): string {
    if (type.includes('/') || type === '.' || type === '..') throw new CniError(type, 7, `plugin type "${type}" is not a file name`);
    for (const dir of this.binDirs) {
      const file = join(dir, type);
      try {
        accessSync(file, fsc.X_OK);
        if (statSync(file).isFile()) return file;
      } catch {
        // next dir
      }
    }
    throw new CniError(type, CNI_NOT_FOUND, `no executable "${type}" in ${this.binDirs.join(', ')}`);
  }

  /** Every plugin exists and supports the list's cniVersion (spec VERSION command). */
  async validate(list: NetworkList): Promise<void> {
    for (const p of list.plugins) {
      const supported = await this.supportedVersions(p.type, list.cniVersion);
      if (!supported.includes(list.cniVersion)) {
        throw new CniError(p.type, 1, `does not support cniVersion ${list.cniVersion}`, `it supports ${supported.join(', ')}`);
      }
    }
  }

  async supportedVersions(type: string, cniVersion: string): Promise<string[]> {
    const file = this.find(type);
    const key = `${file}@${statSync(file).mtimeMs}`;
    const known = this.versions.get(key);
    if (known) return known;
    const out = await this.run(file, type, 'VERSION', { cniVersion }, { containerId: '', netns: '', ifName: '', args: [], capabilityArgs: {} });
    const v = out as { supportedVersions?: unknown };
    // Plugins from before 0.2.0 had no VERSION: the spec says they support 0.1.0 only.
    const list = Array.isArray(v?.supportedVersions) ? v.supportedVersions.filter((x): x is string => typeof x === 'string') : ['0.1.0'];
    this.versions.set(key, list);
    return list;
  }

  /** ADD through the list; the last plugin's result. */
  async add(list: NetworkList, inv: Invocation): Promise<CniResult> {
    let prev: CniResult | undefined;
    for (const p of list.plugins) {
      const out = await this.run(this.find(p.type), p.type, 'ADD', pluginConfig(list, p, inv, prev), inv);
      if (!out || typeof out !== 'object') throw new CniError(p.type, CNI_BAD_OUTPUT, 'ADD printed no result');
      prev = out as CniResult;
    }
    return prev!;
  }

  /** DEL in reverse order, with the cached ADD result as prevResult (from 0.4.0). */
  async del(list: NetworkList, inv: Invocation, cached: CniResult | undefined): Promise<void> {
    const prev = compareVersions(list.cniVersion, '0.4.0') >= 0 ? cached : undefined;
    for (const p of [...list.plugins].reverse()) await this.run(this.find(p.type), p.type, 'DEL', pluginConfig(list, p, inv, prev), inv);
  }

  /** CHECK (0.4.0+; older lists and disableCheck: nothing to do) in order, with the cached result. */
  async check(list: NetworkList, inv: Invocation, cached: CniResult): Promise<void> {
    if (compareVersions(list.cniVersion, '0.4.0') < 0 || list.disableCheck) return;
    for (const p of list.plugins) await this.run(this.find(p.type), p.type, 'CHECK', pluginConfig(list, p, inv, cached), inv);
  }

  /** One exec of a plugin: JSON on stdin, JSON (or nothing) on stdout. */
  async run(file: string, type: string, command: string, conf: object, inv: Invocation): Promise<unknown> {
    const env: Record<string, string> = {
      CNI_COMMAND: command,
      CNI_CONTAINERID: inv.containerId,
      CNI_NETNS: inv.netns,
      CNI_IFNAME: inv.ifName,
      CNI_ARGS: inv.args.map(([k, v]) => `${k}=${v}`).join(';'),
      CNI_PATH: this.binDirs.join(':'),
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    };
    let r: RunResult;
    try {
      r = await runProgram(file, { env, input: JSON.stringify(conf), timeoutMs: this.timeoutMs });
    } catch (e) {
      throw new CniError(type, CNI_FAILED, `${command}: cannot run ${file}: ${(e as Error).message}`);
    }
    const stdout = r.stdout.toString('utf8').trim();
    const stderr = r.stderr.toString('utf8').trim();
    let parsed: unknown;
    if (stdout) {
      try {
        parsed = JSON.parse(stdout);
      } catch {
        parsed = undefined;
      }
    }
    if (r.code === 0) {
      if (stdout && parsed === undefined) throw new CniError(type, CNI_BAD_OUTPUT, `${command}: output is not JSON: ${stdout.slice(0, 200)}`);
      return parsed;
    }
    const e = parsed as { code?: unknown; msg?: unknown; details?: unknown } | undefined;
    if (e && typeof e.code === 'number') {
      throw new CniError(type, e.code, `${command}: ${typeof e.msg === 'string' ? e.msg : 'failed'}`, typeof e.details === 'string' ? e.details : '');
    }
    const how = r.timedOut ? `killed by SIGKILL after the timeout (${this.timeoutMs} ms)` : r.signal ? `killed by ${r.signal}` : `exit ${r.code}`;
    throw new CniError(type, CNI_FAILED, `${command}: ${how}`, (stderr || stdout).slice(0, 500));
  }
}

/** The config one plugin of the list gets on stdin (libcni's buildOneConfig + injectRuntimeConfig). */
export function pluginConfig(list: NetworkList, plugin: PluginConf, inv: Invocation, prev: CniResult | undefined): Record<string, unknown> {
  const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
  const runtimeConfig: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
    if (on && inv.capabilityArgs[cap] !== undefined) runtimeConfig[cap] = inv.capabilityArgs[cap];
  }
  if (Object.keys(runtimeConfig).length) conf.runtimeConfig = runtimeConfig;
  if (prev) conf.prevResult = prev;
  return conf;
}

/** The addresses of a result, IPv4 first (PodSandboxStatus ip, then additional_ips). */
export function resultIps(result: CniResult | undefined): string[] {
  if (!result) return [];
  const ips: string[] = [];
  if (compareVersions(result.cniVersion ?? '0.1.0', '0.3.0') < 0) {
    // 0.1.0/0.2.0: {"ip4": {"ip": "10.0.0.2/24"}, "ip6": {...}}
    for (const k of ['ip4', 'ip6']) {
      const ip = (result[k] as { ip?: string } | undefined)?.ip;
      if (ip) ips.push(ip.split('/')[0]!);
    }
    return ips;
  }
  const ifaces = result.interfaces ?? [];
  for (const ip of result.ips ?? []) {
    // Addresses on a host-side interface (no sandbox) are not the pod's.
    const iface = ip.interface !== undefined ? ifaces[ip.interface] : undefined;
    if (iface && !iface.sandbox) continue;
    ips.push(ip.address.split('/')[0]!);
  }
  return ips.sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')));
}

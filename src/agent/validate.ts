// Validation of a Pod manifest, as the API server's (pkg/apis/core/validation) for what the agent
// runs, plus what a standalone agent cannot do. Every error names its field as the API does
// ("spec.containers[0].image") and says why. Runs on the defaulted object (defaults.ts).
import { isAbsolute } from 'node:path';
import { Quantity } from './quantity.js';
import type { Container, LifecycleHandler, Pod, Probe, Volume } from './types.js';

export interface FieldError {
  field: string;
  reason: string;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const RESTART_POLICIES = ['Always', 'OnFailure', 'Never'];
const DNS_POLICIES = ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'];
const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'];
const PROTOCOLS = ['TCP', 'UDP', 'SCTP'];
const HOST_PATH_TYPES = ['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice'];
const PROPAGATIONS = ['None', 'HostToContainer', 'Bidirectional'];
/** Volume sources the agent can set up without an API server. */
export const LOCAL_VOLUME_SOURCES = ['hostPath', 'emptyDir'];
const FIELD_PATHS = /^(metadata\.(name|namespace|uid|labels\['[^']+'\]|annotations\['[^']+'\])|spec\.(nodeName|serviceAccountName)|status\.(hostIP|hostIPs|podIP|podIPs))$/;
const CONTAINER_RESOURCES = /^(limits|requests)\.(cpu|memory|ephemeral-storage|hugepages-.+)$/;

class Errors {
  readonly list: FieldError[] = [];
  add(field: string, reason: string): void {
    this.list.push({ field, reason });
  }
  required(field: string, value: unknown): boolean {
    if (value === undefined || value === null || value === '') {
      this.add(field, 'Required value');
      return false;
    }
    return true;
  }
}

/** The errors of a defaulted manifest; empty when it is valid. */
export function validatePod(pod: Pod): FieldError[] {
  const e = new Errors();
  validateMeta(pod, e);
  const spec = pod.spec;
  if (!spec || typeof spec !== 'object') {
    e.add('spec', 'Required value');
    return e.list;
  }
  const volumes = validateVolumes(spec.volumes ?? [], e);
  if (!Array.isArray(spec.containers) || spec.containers.length === 0) e.add('spec.containers', 'Required value');
  const names = new Set<string>();
  (spec.initContainers ?? []).forEach((c, i) => validateContainer(c, `spec.initContainers[${i}]`, volumes, names, e, true));
  (spec.containers ?? []).forEach((c, i) => validateContainer(c, `spec.containers[${i}]`, volumes, names, e, false));
  if (spec.ephemeralContainers?.length) e.add('spec.ephemeralContainers', 'Forbidden: cannot be set on pod creation');
  if (!RESTART_POLICIES.includes(spec.restartPolicy!)) e.add('spec.restartPolicy', `Unsupported value: "${spec.restartPolicy}": supported values: ${quoted(RESTART_POLICIES)}`);
  if (!DNS_POLICIES.includes(spec.dnsPolicy!)) e.add('spec.dnsPolicy', `Unsupported value: "${spec.dnsPolicy}": supported values: ${quoted(DNS_POLICIES)}`);
  if (spec.dnsPolicy === 'None' && !spec.dnsConfig) e.add('spec.dnsConfig', 'Required value: must provide `dnsConfig` when `dnsPolicy` is None');
  if ((spec.dnsConfig?.nameservers?.length ?? 0) > 3) e.add('spec.dnsConfig.nameservers', 'Invalid value: must not have more than 3 nameservers');
  nonNegative(spec.terminationGracePeriodSeconds, 'spec.terminationGracePeriodSeconds', e);
  if (spec.activeDeadlineSeconds !== undefined && !(Number.isInteger(spec.activeDeadlineSeconds) && spec.activeDeadlineSeconds > 0)) {
    e.add('spec.activeDeadlineSeconds', 'Invalid value: must be a positive integer');
  }
  if (spec.hostname !== undefined && !DNS1123_LABEL.test(spec.hostname)) e.add('spec.hostname', `Invalid value: "${spec.hostname}": must be a DNS label`);
  if (spec.subdomain !== undefined && !DNS1123_LABEL.test(spec.subdomain)) e.add('spec.subdomain', `Invalid value: "${spec.subdomain}": must be a DNS label`);
  if (spec.shareProcessNamespace && spec.hostPID) e.add('spec.shareProcessNamespace', 'Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled');
  if (spec.hostUsers === false) e.add('spec.hostUsers', 'Unsupported value: false: pods in user namespaces need the kubelet\'s ID mappings, which this agent does not allocate');
  (spec.securityContext?.sysctls ?? []).forEach((s, i) => {
    if (!/^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$/.test(s?.name ?? '')) e.add(`spec.securityContext.sysctls[${i}].name`, `Invalid value: "${s?.name}": must be a sysctl name`);
  });
  for (const [i, a] of (spec.hostAliases ?? []).entries()) e.required(`spec.hostAliases[${i}].ip`, a?.ip);
  return e.list;
}

function validateMeta(pod: Pod, e: Errors): void {
  if (pod.apiVersion !== 'v1') e.add('apiVersion', `Unsupported value: "${pod.apiVersion ?? ''}": supported values: "v1"`);
  if (pod.kind !== 'Pod') e.add('kind', `Unsupported value: "${pod.kind ?? ''}": supported values: "Pod"`);
  const meta = pod.metadata;
  if (!meta || typeof meta !== 'object') {
    e.add('metadata', 'Required value');
    return;
  }
  if (e.required('metadata.name', meta.name) && !(DNS1123_SUBDOMAIN.test(meta.name) && meta.name.length <= 253)) {
    e.add('metadata.name', `Invalid value: "${meta.name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`);
  }
  if (meta.namespace !== undefined && meta.namespace !== '' && !(DNS1123_LABEL.test(meta.namespace) && meta.namespace.length <= 63)) {
    e.add('metadata.namespace', `Invalid value: "${meta.namespace}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'`);
  }
  for (const [k, v] of Object.entries(meta.labels ?? {})) {
    if (!validQualifiedName(k)) e.add(`metadata.labels`, `Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character`);
    if (typeof v !== 'string' || v.length > 63 || !LABEL_VALUE.test(v)) e.add(`metadata.labels`, `Invalid value: "${v}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.' (at most 63)`);
  }
  for (const [k, v] of Object.entries(meta.annotations ?? {})) {
    if (!validQualifiedName(k)) e.add('metadata.annotations', `Invalid value: "${k}": name part must consist of alphanumeric characters, '-', '_' or '.'`);
    if (typeof v !== 'string') e.add(`metadata.annotations`, `Invalid value: ${JSON.stringify(v)}: annotation values must be strings`);
  }
}

function validQualifiedName(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && !(DNS1123_SUBDOMAIN.test(prefix) && prefix.length <= 253)) return false;
  return name.length > 0 && name.length <= 63 && QUALIFIED_NAME.test(name);
}

function validateVolumes(volumes: Volume[], e: Errors): Set<string> {
  const names = new Set<string>();
  volumes.forEach((v, i) => {
    const f = `spec.volumes[${i}]`;
    if (!e.required(`${f}.name`, v?.name)) return;
    if (!DNS1123_LABEL.test(v.name) || v.name.length > 63) e.add(`${f}.name`, `Invalid value: "${v.name}": must be a DNS label`);
    if (names.has(v.name)) e.add(`${f}.name`, `Duplicate value: "${v.name}"`);
    names.add(v.name);
    const sources = Object.keys(v).filter((k) => k !== 'name');
    if (sources.length !== 1) {
      e.add(f, sources.length === 0 ? 'Required value: must specify a volume type' : `Forbidden: may not specify more than 1 volume type (${sources.join(', ')})`);
      return;
    }
    if (v.hostPath) {
      if (e.required(`${f}.hostPath.path`, v.hostPath.path) && !isAbsolute(v.hostPath.path)) e.add(`${f}.hostPath.path`, `Invalid value: "${v.hostPath.path}": must be an absolute path`);
      if (v.hostPath.path?.split('/').includes('..')) e.add(`${f}.hostPath.path`, `Invalid value: "${v.hostPath.path}": must not contain '..'`);
      if (!HOST_PATH_TYPES.includes(v.hostPath.type ?? '')) e.add(`${f}.hostPath.type`, `Unsupported value: "${v.hostPath.type}": supported values: ${quoted(HOST_PATH_TYPES)}`);
    }
    if (v.emptyDir) {
      const medium = v.emptyDir.medium ?? '';
      if (medium !== '' && medium !== 'Memory') e.add(`${f}.emptyDir.medium`, `Unsupported value: "${medium}": supported values: "", "Memory"`);
      quantity(v.emptyDir.sizeLimit, `${f}.emptyDir.sizeLimit`, e);
    }
  });
  return names;
}

function validateContainer(c: Container, f: string, volumes: Set<string>, names: Set<string>, e: Errors, init: boolean): void {
  if (!c || typeof c !== 'object') {
    e.add(f, 'Invalid value: must be an object');
    return;
  }
  if (e.required(`${f}.name`, c.name)) {
    if (!DNS1123_LABEL.test(c.name) || c.name.length > 63) e.add(`${f}.name`, `Invalid value: "${c.name}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'`);
    if (names.has(c.name)) e.add(`${f}.name`, `Duplicate value: "${c.name}"`);
    names.add(c.name);
  }
  if (e.required(`${f}.image`, c.image) && c.image!.trim() !== c.image) e.add(`${f}.image`, 'Invalid value: must not have leading or trailing whitespace');
  if (!PULL_POLICIES.includes(c.imagePullPolicy!)) e.add(`${f}.imagePullPolicy`, `Unsupported value: "${c.imagePullPolicy}": supported values: ${quoted(PULL_POLICIES)}`);
  if (c.terminationMessagePolicy !== 'File' && c.terminationMessagePolicy !== 'FallbackToLogsOnError') {
    e.add(`${f}.terminationMessagePolicy`, `Unsupported value: "${c.terminationMessagePolicy}": supported values: "File", "FallbackToLogsOnError"`);
  }
  if (c.restartPolicy !== undefined) {
    if (!init) e.add(`${f}.restartPolicy`, 'Forbidden: may not be set for non-init containers');
    else e.add(`${f}.restartPolicy`, 'Unsupported value: restartable init containers (sidecars) are not run by this agent');
  }
  if (c.command !== undefined && !isStringArray(c.command)) e.add(`${f}.command`, 'Invalid value: must be a list of strings');
  if (c.args !== undefined && !isStringArray(c.args)) e.add(`${f}.args`, 'Invalid value: must be a list of strings');
  const portNames = new Set<string>();
  (c.ports ?? []).forEach((p, i) => {
    const pf = `${f}.ports[${i}]`;
    port(p?.containerPort, `${pf}.containerPort`, e, true);
    if (p?.hostPort) port(p.hostPort, `${pf}.hostPort`, e, true);
    if (!PROTOCOLS.includes(p?.protocol ?? '')) e.add(`${pf}.protocol`, `Unsupported value: "${p?.protocol}": supported values: ${quoted(PROTOCOLS)}`);
    if (p?.name !== undefined) {
      if (!(IANA_SVC_NAME.test(p.name) && p.name.length <= 15 && /[a-z]/.test(p.name) && !p.name.includes('--'))) e.add(`${pf}.name`, `Invalid value: "${p.name}": must be an IANA_SVC_NAME (at most 15 characters, lower case alphanumeric or '-', with a letter)`);
      if (portNames.has(p.name)) e.add(`${pf}.name`, `Duplicate value: "${p.name}"`);
      portNames.add(p.name);
    }
  });
  (c.env ?? []).forEach((env, i) => {
    const ef = `${f}.env[${i}]`;
    if (!e.required(`${ef}.name`, env?.name)) return;
    if (!ENV_NAME.test(env.name)) e.add(`${ef}.name`, `Invalid value: "${env.name}": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit`);
    if (env.valueFrom) {
      if (env.value) e.add(`${ef}.valueFrom`, "Invalid value: may not be specified when `value` is not empty");
      const sources = Object.keys(env.valueFrom);
      if (sources.length !== 1) e.add(`${ef}.valueFrom`, 'Invalid value: may not have more than one field specified at a time');
      const fr = env.valueFrom.fieldRef;
      if (fr && !FIELD_PATHS.test(fr.fieldPath ?? '')) e.add(`${ef}.valueFrom.fieldRef.fieldPath`, `Unsupported value: "${fr.fieldPath}"`);
      const rr = env.valueFrom.resourceFieldRef;
      if (rr) {
        if (!CONTAINER_RESOURCES.test(rr.resource ?? '')) e.add(`${ef}.valueFrom.resourceFieldRef.resource`, `Unsupported value: "${rr.resource}"`);
        quantity(rr.divisor, `${ef}.valueFrom.resourceFieldRef.divisor`, e);
      }
    } else if (env.value !== undefined && typeof env.value !== 'string') {
      e.add(`${ef}.value`, `Invalid value: ${JSON.stringify(env.value)}: must be a string`);
    }
  });
  validateResources(c, f, e);
  const paths = new Set<string>();
  (c.volumeMounts ?? []).forEach((m, i) => {
    const mf = `${f}.volumeMounts[${i}]`;
    if (e.required(`${mf}.name`, m?.name) && !volumes.has(m.name)) e.add(`${mf}.name`, `Not found: "${m.name}"`);
    if (e.required(`${mf}.mountPath`, m?.mountPath)) {
      if (!isAbsolute(m.mountPath)) e.add(`${mf}.mountPath`, `Invalid value: "${m.mountPath}": must be an absolute path`);
      if (paths.has(m.mountPath)) e.add(`${mf}.mountPath`, `Invalid value: "${m.mountPath}": must be unique`);
      paths.add(m.mountPath);
    }
    if (m?.subPath !== undefined && (isAbsolute(m.subPath) || m.subPath.split('/').includes('..'))) e.add(`${mf}.subPath`, `Invalid value: "${m.subPath}": must be a relative path without '..'`);
    if (m?.subPathExpr !== undefined) e.add(`${mf}.subPathExpr`, 'Unsupported value: subPathExpr is not supported by this agent');
    if (m?.mountPropagation !== undefined && !PROPAGATIONS.includes(m.mountPropagation)) e.add(`${mf}.mountPropagation`, `Unsupported value: "${m.mountPropagation}": supported values: ${quoted(PROPAGATIONS)}`);
    if (m?.mountPropagation === 'Bidirectional' && !c.securityContext?.privileged) e.add(`${mf}.mountPropagation`, 'Forbidden: Bidirectional mount propagation is available only to privileged containers');
  });
  if (c.volumeDevices?.length) e.add(`${f}.volumeDevices`, 'Unsupported value: block volumes need a PersistentVolumeClaim, which needs an API server');
  if (init) {
    for (const p of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) if (c[p]) e.add(`${f}.${p}`, 'Forbidden: may not be set for init containers without restartPolicy=Always');
    if (c.lifecycle) e.add(`${f}.lifecycle`, 'Forbidden: may not be set for init containers without restartPolicy=Always');
  }
  validateProbe(c.livenessProbe, `${f}.livenessProbe`, c, e, true);
  validateProbe(c.readinessProbe, `${f}.readinessProbe`, c, e, false);
  validateProbe(c.startupProbe, `${f}.startupProbe`, c, e, true);
  if (c.readinessProbe?.terminationGracePeriodSeconds !== undefined) e.add(`${f}.readinessProbe.terminationGracePeriodSeconds`, 'Invalid value: must not be set for readinessProbes');
  validateHandler(c.lifecycle?.postStart, `${f}.lifecycle.postStart`, c, e, false);
  validateHandler(c.lifecycle?.preStop, `${f}.lifecycle.preStop`, c, e, false);
  const sc = c.securityContext;
  if (sc?.privileged && sc.allowPrivilegeEscalation === false) e.add(`${f}.securityContext`, 'Invalid value: cannot set `allowPrivilegeEscalation` to false and `privileged` to true');
  if (sc?.procMount !== undefined && sc.procMount !== 'Default' && sc.procMount !== 'Unmasked') e.add(`${f}.securityContext.procMount`, `Unsupported value: "${sc.procMount}"`);
}

function validateResources(c: Container, f: string, e: Errors): void {
  const r = c.resources;
  if (!r) return;
  const parsed: Record<'limits' | 'requests', Record<string, Quantity>> = { limits: {}, requests: {} };
  for (const kind of ['limits', 'requests'] as const) {
    for (const [name, v] of Object.entries(r[kind] ?? {})) {
      const q = quantity(v, `${f}.resources.${kind}[${name}]`, e);
      if (!q) continue;
      if (q.sign() < 0) e.add(`${f}.resources.${kind}[${name}]`, `Invalid value: "${v}": must be greater than or equal to 0`);
      if (!/^(cpu|memory|ephemeral-storage|hugepages-.+|[a-z0-9.-]+\/[A-Za-z0-9._-]+)$/.test(name)) e.add(`${f}.resources.${kind}[${name}]`, `Invalid value: "${name}": must be a standard resource type or fully qualified`);
      parsed[kind][name] = q;
    }
  }
  for (const [name, req] of Object.entries(parsed.requests)) {
    const lim = parsed.limits[name];
    if (lim && req.cmp(lim) > 0) e.add(`${f}.resources.requests`, `Invalid value: "${r.requests![name]}": must be less than or equal to ${name} limit of ${r.limits![name]}`);
  }
}

function validateProbe(p: Probe | undefined, f: string, c: Container, e: Errors, successMustBeOne: boolean): void {
  if (!p) return;
  validateHandler(p, f, c, e, true);
  nonNegative(p.initialDelaySeconds, `${f}.initialDelaySeconds`, e);
  for (const k of ['timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold'] as const) {
    if (!(Number.isInteger(p[k]) && p[k]! >= 1)) e.add(`${f}.${k}`, `Invalid value: ${JSON.stringify(p[k])}: must be greater than or equal to 1`);
  }
  if (successMustBeOne && p.successThreshold !== 1) e.add(`${f}.successThreshold`, `Invalid value: ${p.successThreshold}: must be 1`);
  if (p.terminationGracePeriodSeconds !== undefined && !(Number.isInteger(p.terminationGracePeriodSeconds) && p.terminationGracePeriodSeconds > 0)) {
    e.add(`${f}.terminationGracePeriodSeconds`, 'Invalid value: must be greater than 0');
  }
}

function validateHandler(h: (LifecycleHandler & { grpc?: unknown }) | undefined, f: string, c: Container, e: Errors, probe: boolean): void {
  if (!h) return;
  const kinds = (['exec', 'httpGet', 'tcpSocket', 'grpc', 'sleep'] as const).filter((k) => h[k as keyof typeof h] !== undefined);
  if (kinds.length !== 1) {
    e.add(f, kinds.length === 0 ? 'Required value: must specify a handler type' : `Forbidden: may not specify more than 1 handler type (${kinds.join(', ')})`);
    return;
  }
  const kind = kinds[0]!;
  if (probe && kind === 'sleep') e.add(`${f}.sleep`, 'Forbidden: sleep is a lifecycle handler, not a probe');
  if (!probe && kind === 'grpc') e.add(`${f}.grpc`, 'Forbidden: grpc is a probe, not a lifecycle handler');
  if (!probe && kind === 'tcpSocket') e.add(`${f}.tcpSocket`, 'Unsupported value: tcpSocket lifecycle handlers are deprecated and not run (as by the kubelet)');
  if (h.exec && !(isStringArray(h.exec.command) && h.exec.command.length > 0)) e.add(`${f}.exec.command`, 'Required value');
  if (h.httpGet) {
    namedOrNumberPort(h.httpGet.port, `${f}.httpGet.port`, c, e);
    if (h.httpGet.scheme !== 'HTTP' && h.httpGet.scheme !== 'HTTPS') e.add(`${f}.httpGet.scheme`, `Unsupported value: "${h.httpGet.scheme}": supported values: "HTTP", "HTTPS"`);
    (h.httpGet.httpHeaders ?? []).forEach((hd, i) => {
      if (!/^[-!#$%&'*+.^_`|~0-9A-Za-z]+$/.test(hd?.name ?? '')) e.add(`${f}.httpGet.httpHeaders[${i}].name`, `Invalid value: "${hd?.name}": must be a valid HTTP header name`);
    });
  }
  if (h.tcpSocket) namedOrNumberPort(h.tcpSocket.port, `${f}.tcpSocket.port`, c, e);
  const grpc = (h as Probe).grpc;
  if (grpc) port(grpc.port, `${f}.grpc.port`, e, true);
  if (h.sleep && !(Number.isInteger(h.sleep.seconds) && h.sleep.seconds >= 0)) e.add(`${f}.sleep.seconds`, 'Invalid value: must be greater than or equal to 0');
}

function namedOrNumberPort(p: number | string | undefined, f: string, c: Container, e: Errors): void {
  if (typeof p === 'string' && !/^\d+$/.test(p)) {
    if (!(c.ports ?? []).some((cp) => cp.name === p)) e.add(f, `Invalid value: "${p}": no container port named "${p}"`);
    return;
  }
  port(typeof p === 'string' ? Number(p) : p, f, e, true);
}

function port(p: unknown, f: string, e: Errors, required: boolean): void {
  if (p === undefined && !required) return;
  if (!(Number.isInteger(p) && (p as number) >= 1 && (p as number) <= 65535)) e.add(f, `Invalid value: ${JSON.stringify(p)}: must be between 1 and 65535, inclusive`);
}

function nonNegative(v: unknown, f: string, e: Errors): void {
  if (v !== undefined && !(Number.isInteger(v) && (v as number) >= 0)) e.add(f, `Invalid value: ${JSON.stringify(v)}: must be greater than or equal to 0`);
}

function quantity(v: unknown, f: string, e: Errors): Quantity | undefined {
  if (v === undefined) return undefined;
  try {
    if (typeof v !== 'string' && typeof v !== 'number') throw new Error('must be a string or a number');
    return Quantity.parse(v);
  } catch (err) {
    e.add(f, `Invalid value: ${JSON.stringify(v)}: ${(err as Error).message}`);
    return undefined;
  }
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

function quoted(list: string[]): string {
  return list.map((s) => `"${s}"`).join(', ');
}

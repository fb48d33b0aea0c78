// The API's defaulting of a v1 Pod (pkg/apis/core/v1/defaults.go), which the kubelet's file source
// gets from its decoder before it hashes and runs the pod. Mutates the object in place.
import type { Container, Pod, Probe, LifecycleHandler } from './types.js';

export const DEFAULT_TERMINATION_GRACE_PERIOD = 30;
export const DEFAULT_TERMINATION_MESSAGE_PATH = '/dev/termination-log';

export function setPodDefaults(pod: Pod): void {
  const spec = pod.spec;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.restartPolicy ??= 'Always';
  spec.securityContext ??= {};
  spec.terminationGracePeriodSeconds ??= DEFAULT_TERMINATION_GRACE_PERIOD;
  spec.schedulerName ??= 'default-scheduler';
  spec.enableServiceLinks ??= true;
  for (const v of spec.volumes ?? []) {
    const sources = Object.keys(v).filter((k) => k !== 'name');
    if (sources.length === 0) v.emptyDir = {};
    if (v.hostPath) v.hostPath.type ??= '';
  }
  for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
    setContainerDefaults(c, spec.hostNetwork === true);
  }
}

function setContainerDefaults(c: Container, hostNetwork: boolean): void {
  c.imagePullPolicy ??= defaultPullPolicy(c.image ?? '');
  c.terminationMessagePath ??= DEFAULT_TERMINATION_MESSAGE_PATH;
  c.terminationMessagePolicy ??= 'File';
  for (const p of c.ports ?? []) {
    p.protocol ??= 'TCP';
    // A pod on the host's network listens on the host: its ports are host ports.
    if (hostNetwork && !p.hostPort) p.hostPort = p.containerPort;
  }
  // Requests default to limits, resource by resource.
  const limits = c.resources?.limits;
  if (limits && Object.keys(limits).length > 0) {
    c.resources!.requests ??= {};
    for (const [name, q] of Object.entries(limits)) if (!(name in c.resources!.requests)) c.resources!.requests[name] = q;
  }
  for (const p of [c.livenessProbe, c.readinessProbe, c.startupProbe]) if (p) setProbeDefaults(p);
  for (const h of [c.lifecycle?.postStart, c.lifecycle?.preStop]) if (h) setHandlerDefaults(h);
  for (const e of c.env ?? []) if (e.valueFrom?.fieldRef) e.valueFrom.fieldRef.apiVersion ??= 'v1';
}

function setProbeDefaults(p: Probe): void {
  p.timeoutSeconds ??= 1;
  p.periodSeconds ??= 10;
  p.successThreshold ??= 1;
  p.failureThreshold ??= 3;
  setHandlerDefaults(p);
}

function setHandlerDefaults(h: LifecycleHandler | Probe): void {
  if (h.httpGet) {
    h.httpGet.path ||= '/';
    h.httpGet.scheme ??= 'HTTP';
  }
}

/** Always for ":latest" or an untagged image (not by digest), else IfNotPresent. */
export function defaultPullPolicy(image: string): 'Always' | 'IfNotPresent' {
  if (image.includes('@')) return 'IfNotPresent';
  const lastSlash = image.lastIndexOf('/');
  const colon = image.indexOf(':', lastSlash + 1);
  const tag = colon >= 0 ? image.slice(colon + 1) : '';
  return tag === '' || tag === 'latest' ? 'Always' : 'IfNotPresent';
}

// What the kubelet's file source does to a pod read from a manifest (pkg/kubelet/config/common.go
// applyDefaults, config.go): the uid is a hash of the pod, the node and the file; the name gets
// the node's name; the pod is bound to the node; the config annotations say where it came from.
import { createHash } from 'node:crypto';
import type { Pod } from './types.js';

export const ANNOTATION_CONFIG_HASH = 'kubernetes.io/config.hash';
export const ANNOTATION_CONFIG_SOURCE = 'kubernetes.io/config.source';
export const ANNOTATION_CONFIG_SEEN = 'kubernetes.io/config.seen';
export const FILE_SOURCE = 'file';

/**
 * A stable uid for the pod: md5 over its (defaulted) content, then "host:<node>" and
 * "file:<path>", as the kubelet's. The kubelet hashes Go's printed form of the object, which
 * cannot be reproduced here, so the value differs from the kubelet's for the same file.
 */
export function staticPodUid(pod: Pod, nodeName: string, file: string): string {
  const h = createHash('md5');
  h.update(canonicalJson(pod));
  h.update(`host:${nodeName}`);
  h.update(`file:${file}`);
  return h.digest('hex');
}

/** `<name>-<node>`, as the kubelet names static pods (the node name in lower case). */
export function staticPodName(name: string, nodeName: string): string {
  return `${name}-${nodeName.toLowerCase()}`;
}

/** Applies the file source's defaults to a defaulted, validated pod, in place. */
export function applyStaticPodDefaults(pod: Pod, nodeName: string, file: string, seen: Date): void {
  const meta = pod.metadata;
  if (!meta.uid) meta.uid = staticPodUid(pod, nodeName, file);
  meta.name = staticPodName(meta.name, nodeName);
  if (!meta.namespace) meta.namespace = 'default';
  meta.labels ??= {};
  meta.annotations ??= {};
  pod.spec.nodeName = nodeName;
  meta.annotations[ANNOTATION_CONFIG_HASH] = meta.uid;
  meta.annotations[ANNOTATION_CONFIG_SOURCE] = FILE_SOURCE;
  meta.annotations[ANNOTATION_CONFIG_SEEN] = rfc3339Nano(seen);
  // Static pods tolerate every NoExecute taint: node problems never evict them.
  pod.spec.tolerations = [...(pod.spec.tolerations ?? []), { operator: 'Exists', effect: 'NoExecute' }];
}

/** Go's time.RFC3339Nano in UTC: fractional seconds without trailing zeros. */
export function rfc3339Nano(d: Date): string {
  const iso = d.toISOString();
  return iso.replace(/\.(\d*?)0*Z$/, (_m, frac: string) => (frac ? `.${frac}Z` : 'Z'));
}

/** Go's time.RFC3339 (seconds) in UTC, as metav1.Time marshals. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** JSON with object keys sorted, so equal objects hash equally whatever their key order. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const keys = Object.keys(v).filter((k) => (v as Record<string, unknown>)[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

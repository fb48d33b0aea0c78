// A Pod manifest file → a pod the agent can run, or the reasons it cannot. One pod per file,
// YAML or JSON (JSON is YAML). As the kubelet's file source: decode, default, give it its static
// pod name, uid and annotations, validate.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { setPodDefaults } from './defaults.js';
import { applyStaticPodDefaults } from './static-pod.js';
import type { Pod } from './types.js';
import { validatePod, type FieldError } from './validate.js';

export type ManifestResult = { ok: true; pod: Pod } | { ok: false; errors: FieldError[] };

/** Whether the watcher should read `file`: the kubelet skips dot files (editors' swap files too). */
export function isManifestFile(file: string): boolean {
  const name = basename(file);
  return !name.startsWith('.') && !name.endsWith('~');
}

/** Reads and checks a manifest file; never throws. */
export function loadManifest(file: string, nodeName: string, seen: Date = new Date()): ManifestResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, errors: [{ field: '', reason: `cannot read: ${(err as Error).message}` }] };
  }
  return parseManifest(text, file, nodeName, seen);
}

/** Parses manifest text read from `file` (the path goes into the uid). */
export function parseManifest(text: string, file: string, nodeName: string, seen: Date = new Date()): ManifestResult {
  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
  if (!Array.isArray(docs)) return { ok: false, errors: [{ field: '', reason: 'empty file' }] };
  const nonEmpty = docs.filter((d) => d.contents !== null || d.errors.length > 0);
  if (nonEmpty.length === 0) return { ok: false, errors: [{ field: '', reason: 'no pod in the file' }] };
  if (nonEmpty.length > 1) return { ok: false, errors: [{ field: '', reason: `${nonEmpty.length} documents in one file: one pod per file` }] };
  const doc = nonEmpty[0]!;
  if (doc.errors.length > 0) return { ok: false, errors: doc.errors.map((e) => ({ field: '', reason: `not YAML or JSON: ${e.message.split('\n')[0]}` })) };
  const obj: unknown = doc.toJS({ maxAliasCount: 100 });
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return { ok: false, errors: [{ field: '', reason: 'the document is not an object (a Pod)' }] };
  const pod = obj as Pod;
  if (pod.kind !== 'Pod' || pod.apiVersion !== 'v1') {
    return { ok: false, errors: [{ field: 'kind', reason: `expected apiVersion "v1" and kind "Pod", got apiVersion ${JSON.stringify(pod.apiVersion ?? '')} kind ${JSON.stringify(pod.kind ?? '')}` }] };
  }
  if (!pod.spec || typeof pod.spec !== 'object' || !Array.isArray(pod.spec.containers)) {
    return { ok: false, errors: [{ field: 'spec.containers', reason: 'Required value' }] };
  }
  pod.metadata ??= {} as Pod['metadata'];
  try {
    setPodDefaults(pod);
  } catch (err) {
    return { ok: false, errors: [{ field: 'spec', reason: `malformed: ${(err as Error).message}` }] };
  }
  const errors = validatePod(pod);
  if (errors.length > 0) return { ok: false, errors };
  applyStaticPodDefaults(pod, nodeName, file, seen);
  if (pod.metadata.name.length > 253) return { ok: false, errors: [{ field: 'metadata.name', reason: `Invalid value: "${pod.metadata.name}": must be no more than 253 characters (with the node name)` }] };
  return { ok: true, pod };
}

/** One line naming the file, each field and its reason. */
export function formatManifestErrors(file: string, errors: FieldError[]): string {
  return `${file}: ${errors.map((e) => (e.field ? `${e.field}: ${e.reason}` : e.reason)).join('; ')}`;
}

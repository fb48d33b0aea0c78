// Image reference parsing and normalization, with Docker's rules: the first
// path component is a registry host only if it looks like one (has '.' or ':'
// or is "localhost"); otherwise the image lives on docker.io, and single-name
// docker.io repositories are under "library/".

import { Code, StatusError } from '../errors.js';

export const DEFAULT_DOMAIN = 'docker.io';
export const DEFAULT_TAG = 'latest';

export interface ParsedReference {
  /** Fully qualified repository name, e.g. docker.io/library/busybox. */
  name: string;
  domain: string;
  /** Repository path without the domain, e.g. library/busybox. */
  path: string;
  tag?: string;
  /** sha256:<64 hex>. */
  digest?: string;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
export const DIGEST = /^sha256:[a-f0-9]{64}$/;

export class ReferenceError extends StatusError {
  constructor(ref: string, why: string) {
    super(Code.INVALID_ARGUMENT, `invalid image reference ${JSON.stringify(ref)}: ${why}`);
    this.name = 'ImageReferenceError';
  }
}

/** Parses a (possibly short) reference; no default tag is added. */
export function parseReference(ref: string): ParsedReference {
  if (ref.length === 0 || ref.length > 4096) throw new ReferenceError(ref, 'empty or too long');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw new ReferenceError(ref, 'only sha256 digests (64 lowercase hex) are supported');
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) throw new ReferenceError(ref, `bad tag ${JSON.stringify(tag)}`);
  }
  if (rest.length === 0) throw new ReferenceError(ref, 'missing repository name');
  let domain = DEFAULT_DOMAIN;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      domain = first;
      path = rest.slice(slash + 1);
    }
  }
  if (!DOMAIN.test(domain)) throw new ReferenceError(ref, `bad registry host ${JSON.stringify(domain)}`);
  // index.docker.io is the same registry under another name.
  if (domain === 'index.docker.io') domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = `library/${path}`;
  for (const c of path.split('/')) {
    if (!PATH_COMPONENT.test(c)) throw new ReferenceError(ref, `bad repository path component ${JSON.stringify(c)}`);
  }
  const name = `${domain}/${path}`;
  if (name.length > 255) throw new ReferenceError(ref, 'repository name longer than 255 characters');
  return { name, domain, path, tag, digest };
}

/**
 * The canonical tagged form used as a repo tag: `busybox` →
 * `docker.io/library/busybox:latest`. A reference that carries only a digest
 * has no tag form; that throws.
 */
export function normalizeTag(ref: string): string {
  const p = parseReference(ref);
  if (p.digest && !p.tag) throw new ReferenceError(ref, 'a digest reference is not a tag');
  return `${p.name}:${p.tag ?? DEFAULT_TAG}`;
}

/**
 * Canonical string for any reference: digest references become
 * `name@sha256:…` (a tag next to a digest is dropped, as containerd does),
 * others `name:tag` with the default tag.
 */
export function normalizeReference(ref: string): string {
  const p = parseReference(ref);
  if (p.digest) return `${p.name}@${p.digest}`;
  return `${p.name}:${p.tag ?? DEFAULT_TAG}`;
}

/** True when `s` names an image id (`sha256:<hex>` or bare hex), possibly abbreviated. */
export function looksLikeId(s: string): boolean {
  return /^(?:sha256:)?[a-f0-9]{12,64}$/.test(s);
}

// CRI metadata the Mesos side has no place for: configs, labels, timestamps,
// exit statuses. Kept in memory for fast List/Status and checkpointed to the
// work dir so it survives daemon restarts (and exit codes survive reboots).
import { join } from 'node:path';
import type { PodSandboxConfig__Output } from '../../api/generated/runtime/v1/PodSandboxConfig.js';
import type { ContainerConfig__Output } from '../../api/generated/runtime/v1/ContainerConfig.js';
import type { ContainerConfig as MesosContainerConfig } from '../containerizer/mesos/isolator.js';
import { readCheckpointDir, removeCheckpoint, writeCheckpoint } from './checkpoint.js';
import { faultPoint } from '../fault.js';

export type SandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
export type ContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';

export interface SandboxRecord {
  id: string;
  config: PodSandboxConfig__Output;
  runtimeHandler: string;
  /** ns since epoch, as a decimal string (int64 on the wire) */
  createdAt: string;
  state: SandboxState;
  mesos: MesosContainerConfig;
}

/** What the launch helper runs, fixed at CreateContainer. */
export interface ProcessSpec {
  argv: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  groups: number[];
  /** Capability mask (hex) kept in every set; absent = keep all (privileged). */
  capabilities?: string;
  /** Ambient capability mask (hex), raised last; each is also in `capabilities`. */
  ambient?: string;
  noNewPrivs?: boolean;
  /** The seccomp filter, resolved for this container (src/security/seccomp/compile.ts); absent = unconfined. */
  seccomp?: string;
  /** The AppArmor profile the command and its exec'd processes run under (src/security/apparmor.ts); absent = none. */
  apparmor?: string;
}

export interface ContainerRecord {
  id: string;
  sandboxId: string;
  config: ContainerConfig__Output;
  /** image id (config digest) and the reference the user gave */
  imageId: string;
  imageRef: string;
  createdAt: string;
  startedAt: string;
  finishedAt: string;
  state: ContainerState;
  exitCode: number;
  reason: string;
  message: string;
  /** absolute host path of the CRI log file, '' when none */
  logPath: string;
  process: ProcessSpec;
  stopSignal: string;
  mesos: MesosContainerConfig;
}

export class MetadataStore<T extends { id: string }> {
  private readonly records = new Map<string, T>();
  private readonly deferred = new Set<string>();
  private gen = 0;
  private readonly putListeners: ((record: T) => void)[] = [];

  /**
   * Changes with every record put, changed, forgotten or deleted: an answer built from
   * list() stays right while it is the same. Records themselves are never changed in
   * place (put a new object), so one record's answer can be keyed by the object.
   */
  get generation(): number {
    return this.gen;
  }

  constructor(private readonly dir: string) {}

  load(onBad: (file: string, err: unknown) => void): T[] {
    for (const r of readCheckpointDir<T & { version: number }>(this.dir, onBad)) {
      const { version: _v, ...rest } = r;
      this.records.set(r.id, rest as unknown as T);
    }
    this.gen++;
    return [...this.records.values()];
  }

  /** Called with every record put (or updated) from now on, once it is in memory and on disk. */
  onPut(listener: (record: T) => void): void {
    this.putListeners.push(listener);
  }

  get(id: string): T | undefined {
    return this.records.get(id);
  }

  list(): T[] {
    return [...this.records.values()];
  }

  /**
   * Write-through: memory and disk agree once this returns (the file is renamed in place, so a
   * daemon crash from here on finds it); its fsync is group-committed (checkpoint.ts).
   */
  put(record: T): void {
    faultPoint('record-write:before');
    writeCheckpoint(join(this.dir, `${record.id}.json`), record, { durable: 'group' });
    faultPoint('record-write:after');
    this.records.set(record.id, record);
    this.gen++;
    for (const l of this.putListeners) l(record);
  }

  update(id: string, change: Partial<T>): T | undefined {
    const cur = this.records.get(id);
    if (!cur) return undefined;
    const next = { ...cur, ...change };
    this.put(next);
    return next;
  }

  /**
   * Memory now, disk by flushDeferred(). Only for a change the layer below can tell again
   * after a crash (an exit status the containerizer still holds): recovery uses it so its
   * gate opens without waiting for one write per container that died meanwhile.
   */
  updateDeferred(id: string, change: Partial<T>): T | undefined {
    const cur = this.records.get(id);
    if (!cur) return undefined;
    const next = { ...cur, ...change };
    this.records.set(id, next);
    this.gen++;
    this.deferred.add(id);
    return next;
  }

  /** Write the records updateDeferred() changed, yielding to the event loop between writes. */
  async flushDeferred(): Promise<void> {
    for (const id of this.deferred) {
      this.deferred.delete(id);
      const rec = this.records.get(id);
      // A later put() wrote it already, or it was deleted: the current memory state is what counts.
      if (rec) this.put(rec);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Drop from memory only (its file was moved away). */
  forget(id: string): void {
    this.records.delete(id);
    this.gen++;
  }

  delete(id: string): void {
    faultPoint('record-delete:before');
    removeCheckpoint(join(this.dir, `${id}.json`));
    faultPoint('record-delete:after');
    this.records.delete(id);
    this.gen++;
    this.deferred.delete(id);
  }

  /**
   * A full id, or every record whose id starts with `idOrPrefix` (crictl passes
   * short ids), at most `limit` of them: callers tell "none", "one" and "ambiguous" apart.
   */
  matching(idOrPrefix: string, limit = 2): T[] {
    const exact = this.records.get(idOrPrefix);
    if (exact) return [exact];
    const found: T[] = [];
    if (idOrPrefix.length === 0) return found;
    for (const [id, r] of this.records) {
      if (id.startsWith(idOrPrefix) && found.push(r) >= limit) break;
    }
    return found;
  }
}

/**
 * Reserves names before any work starts, so a Create retried while the first
 * is still in flight (or done) cannot make a second object (containerd's registrar).
 */
export class NameRegistry {
  private readonly byName = new Map<string, string>();

  reserve(name: string, id: string): string | undefined {
    const owner = this.byName.get(name);
    if (owner !== undefined && owner !== id) return owner;
    this.byName.set(name, id);
    return undefined;
  }

  release(name: string): void {
    this.byName.delete(name);
  }

  releaseId(id: string): void {
    for (const [name, owner] of this.byName) if (owner === id) this.byName.delete(name);
  }
}

export function sandboxName(config: PodSandboxConfig__Output): string {
  const m = config.metadata!;
  return [m.name, m.namespace, m.uid, String(m.attempt)].join('_');
}

export function containerName(config: ContainerConfig__Output, sandbox: PodSandboxConfig__Output): string {
  const m = config.metadata!;
  const s = sandbox.metadata!;
  return [m.name, s.name, s.namespace, s.uid, String(m.attempt)].join('_');
}

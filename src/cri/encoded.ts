// Responses in protobuf bytes, built once per change of what they show.
//
// The Status and List calls answer from the in-memory records, and the kubelet asks
// far more often than anything changes: encoding the same answer again (protobufjs'
// fromObject and encode, and int64 timestamps parsed back from decimal strings) was
// most of a handler's own time. Each record is replaced, never changed in place, by
// MetadataStore.put/update, so a cache keyed by the record object forgets an answer the
// moment it goes stale, with no invalidation step to forget. The bytes are what the
// service's own serializer makes: a client cannot tell the difference.
import type * as grpc from '@grpc/grpc-js';

/** A response already encoded: the service's serializer passes its bytes through. */
export class Encoded {
  constructor(readonly bytes: Buffer) {}
}

type Serialize = (value: unknown) => Buffer;

/** Response serializers by method name, from the service the server runs. */
const serializers = new Map<string, Serialize>();
const wrapped = new WeakSet<grpc.MethodDefinition<unknown, unknown>>();

/**
 * Teach each method of `service` to send an Encoded response as is, and keep its
 * serializer for the handlers. Before server.addService, which takes the serializers.
 */
export function passEncoded(service: grpc.ServiceDefinition): void {
  for (const [name, m] of Object.entries(service)) {
    if (wrapped.has(m)) continue;
    const serialize = m.responseSerialize as Serialize;
    serializers.set(name, serialize);
    m.responseSerialize = (v: unknown) => (v instanceof Encoded ? v.bytes : serialize(v));
    wrapped.add(m);
  }
}

export interface Entry {
  variant: string;
  encoded: Encoded;
}

/**
 * The response `build` makes for `key`, encoded once for each `key` (a record) and `variant` (what
 * else the response shows, e.g. a pod's IPs). Without a server's serializer (a handler called on
 * its own), the response object itself.
 */
export function encodedOnce<K extends object, T>(cache: WeakMap<K, Entry>, key: K, method: string, build: () => T, variant = ''): Encoded | T {
  const hit = cache.get(key);
  if (hit && hit.variant === variant) return hit.encoded;
  const serialize = serializers.get(method);
  if (!serialize) return build();
  const encoded = new Encoded(serialize(build()));
  cache.set(key, { variant, encoded });
  return encoded;
}

/** A cache for encodedOnce. */
export function responseCache<K extends object>(): WeakMap<K, Entry> {
  return new WeakMap();
}

/**
 * A List response of `records`: `field` (its only field, a repeated message) holds
 * message(record) for each, in order. Each record's element is encoded once (as a
 * one-element response, whose bytes are the element's tag, length and message), and the
 * response is their concatenation: how protobuf encodes a repeated field.
 */
export function encodedList<R extends object, M>(cache: WeakMap<R, Buffer>, method: string, field: string, records: R[], message: (r: R) => M): Encoded | Record<string, M[]> {
  const serialize = serializers.get(method);
  if (!serialize) return { [field]: records.map(message) };
  const parts: Buffer[] = new Array<Buffer>(records.length);
  let size = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    let b = cache.get(r);
    if (!b) {
      b = serialize({ [field]: [message(r)] });
      cache.set(r, b);
    }
    parts[i] = b;
    size += b.length;
  }
  return new Encoded(Buffer.concat(parts, size));
}

/** Encodings to make once the current work is done, by key (a later one for the same key wins). */
const soon = new Map<string, () => unknown>();
let flushTimer: NodeJS.Timeout | undefined;

/**
 * Run `encode` (a Status handler asked for a record's answer, to fill its cache) after
 * the RPC in progress has answered: the next call about a record that just changed (the
 * kubelet asks for the status of what its relist saw change) finds the answer encoded.
 * A timer, not an immediate: an immediate would run before the changing RPC's own
 * answer is fully written. Nothing waits for it, and a failure (the record went away
 * meanwhile) only means the next call encodes it, as it would have anyway.
 */
export function encodeSoon(key: string, encode: () => unknown): void {
  soon.set(key, encode);
  flushTimer ??= setTimeout(flushSoon, 0).unref();
}

function flushSoon(): void {
  flushTimer = undefined;
  for (const [key, encode] of soon) {
    soon.delete(key);
    try {
      const r = encode();
      if (r instanceof Promise) r.catch(() => undefined);
    } catch {
      // as above
    }
  }
}

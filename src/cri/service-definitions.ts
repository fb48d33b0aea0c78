// The CRI's wire contract as grpc-js method definitions, for the daemon's server and the
// agent's client alike: the one place that picks the built descriptor or the .proto and says
// how messages convert (PROTO_OPTIONS). It loads grpc-js and protobufjs only, none of the daemon.
import * as grpc from '@grpc/grpc-js';
import type * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PROTO_DESCRIPTOR_FILE, PROTO_FILE, projectRoot } from '../util/paths.js';

export const PROTO_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

/**
 * The CRI's two services as grpc-js method definitions, from the built descriptor when it is at
 * least as new as the .proto (less than half the parse time), else from the .proto.
 *
 * Built from protobufjs' reflection directly, with @grpc/proto-loader's conversions
 * (PROTO_OPTIONS; test/unit/service-definitions.test.ts compares the two): proto-loader also
 * makes a descriptor of every message for gRPC reflection, which nothing here serves, and that
 * was two thirds of its 65-75 ms, on the way to a restarted daemon's first answer.
 */
export function criServiceDefinitions(): { runtime: grpc.ServiceDefinition; image: grpc.ServiceDefinition } {
  const root = loadCriRoot();
  return { runtime: serviceDefinition(root, 'runtime.v1.RuntimeService'), image: serviceDefinition(root, 'runtime.v1.ImageService') };
}

/**
 * Types are left unresolved: protobufjs resolves a type's fields when its encoder, decoder or
 * conversions are first made (Type.setup), so each is resolved on its first use. Resolving all
 * ~250 up front (Root.fromJSON's resolveAll) was 25-31 ms of a restarted daemon's way to its
 * first answer, for types most calls never use.
 */
function loadCriRoot(): protobuf.Root {
  const proto = join(projectRoot(), PROTO_FILE);
  const descriptor = join(projectRoot(), PROTO_DESCRIPTOR_FILE);
  const built = statSync(descriptor, { throwIfNoEntry: false });
  if (!built || built.mtimeMs < statSync(proto).mtimeMs) return new protobuf.Root().loadSync(proto, { keepCase: true });
  const json = JSON.parse(readFileSync(descriptor, 'utf8')) as protobuf.INamespace;
  const root = new protobuf.Root();
  if (json.options) root.setOptions(json.options);
  root.addJSON(json.nested!);
  return root;
}

function serviceDefinition(root: protobuf.Root, name: string): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of root.lookupService(name).methodsArray) {
    method.resolve();
    const request = method.resolvedRequestType!;
    const response = method.resolvedResponseType!;
    definition[method.name] = {
      path: `/${name}/${method.name}`,
      requestStream: !!method.requestStream,
      responseStream: !!method.responseStream,
      requestSerialize: serializer(request),
      requestDeserialize: deserializer(request),
      responseSerialize: serializer(response),
      responseDeserialize: deserializer(response),
      originalName: method.name.charAt(0).toLowerCase() + method.name.slice(1),
    };
  }
  return definition;
}

const serializer = (type: protobuf.Type) => (value: unknown) => {
  if (Array.isArray(value)) throw new Error(`Failed to serialize message: expected object with ${type.name} structure, got array instead`);
  // protobufjs writes into a Buffer under Node (its BufferWriter)
  return type.encode(type.fromObject(value as Record<string, unknown>)).finish() as Buffer;
};

const deserializer = (type: protobuf.Type) => (bytes: Buffer) => type.toObject(type.decode(bytes), PROTO_OPTIONS);

let clients: { RuntimeService: grpc.ServiceClientConstructor; ImageService: grpc.ServiceClientConstructor } | undefined;

/** Client constructors of the two services (the agent, the tests, the bench), built once. */
export function criClientConstructors(): { RuntimeService: grpc.ServiceClientConstructor; ImageService: grpc.ServiceClientConstructor } {
  if (clients) return clients;
  const defs = criServiceDefinitions();
  clients = {
    RuntimeService: grpc.makeGenericClientConstructor(defs.runtime, 'runtime.v1.RuntimeService'),
    ImageService: grpc.makeGenericClientConstructor(defs.image, 'runtime.v1.ImageService'),
  };
  return clients;
}

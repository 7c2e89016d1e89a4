/**
 * gRPC server reflection (`grpc.reflection.v1.ServerReflection` and
 * `grpc.reflection.v1alpha.ServerReflection`), so that tools such as grpcurl,
 * grpcui and Postman can discover the API without local copies of the protos.
 *
 * @see https://github.com/grpc/grpc/blob/master/doc/server-reflection.md
 *
 * @module
 */

import { create, createFileRegistry, toBinary } from "@bufbuild/protobuf";
import type { DescFile, FileRegistry } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { ConnectRouter } from "@connectrpc/connect";
import { ServerReflection as ServerReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/**
 * The request fields shared by the v1 and v1alpha `ServerReflectionRequest`
 * messages (the two versions have identical shapes).
 */
interface ReflectionRequest {
  host: string;
  messageRequest:
    | { case: "fileByFilename"; value: string }
    | { case: "fileContainingSymbol"; value: string }
    | {
        case: "fileContainingExtension";
        value: { containingType: string; extensionNumber: number };
      }
    | { case: "allExtensionNumbersOfType"; value: string }
    | { case: "listServices"; value: string }
    | { case: undefined; value?: undefined };
}

/**
 * The `message_response` oneof of `ServerReflectionResponse`, as an init
 * shape accepted by both the v1 and the v1alpha message.
 */
type ReflectionAnswer =
  | {
      case: "fileDescriptorResponse";
      value: { fileDescriptorProto: Uint8Array[] };
    }
  | {
      case: "allExtensionNumbersResponse";
      value: { baseTypeName: string; extensionNumber: number[] };
    }
  | {
      case: "listServicesResponse";
      value: { service: { name: string }[] };
    }
  | {
      case: "errorResponse";
      value: { errorCode: number; errorMessage: string };
    };

/**
 * Answers reflection requests from a fixed set of files. Built once per
 * {@link registerReflection} call and shared by both service versions.
 */
class ReflectionResponder {
  readonly #registry: FileRegistry;
  readonly #services: string[];
  /** Fully-qualified symbol name -> file declaring it. */
  readonly #symbols = new Map<string, DescFile>();
  /** File name -> serialised FileDescriptorProto, filled lazily. */
  readonly #encoded = new Map<string, Uint8Array>();

  constructor(files: readonly DescFile[]) {
    this.#registry = createFileRegistry(
      create(FileDescriptorSetSchema, { file: collectProtos(files) }),
    );
    const services = new Set<string>();
    for (const file of files) {
      for (const service of file.services) {
        services.add(service.typeName);
      }
    }
    this.#services = [...services];
    this.#indexSymbols();
  }

  /** Computes the response to one request of the stream. */
  answer(request: ReflectionRequest): ReflectionAnswer {
    const req = request.messageRequest;
    switch (req.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: { service: this.#services.map((name) => ({ name })) },
        };
      case "fileByFilename": {
        const file = this.#registry.getFile(req.value);
        return file
          ? this.#fileAnswer(file)
          : notFound(`file "${req.value}" not found`);
      }
      case "fileContainingSymbol": {
        const symbol = req.value.replace(/^\./, "");
        const file = this.#symbols.get(symbol);
        return file
          ? this.#fileAnswer(file)
          : notFound(`symbol "${req.value}" not found`);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = req.value;
        const message = this.#registry.getMessage(
          containingType.replace(/^\./, ""),
        );
        if (!message) {
          return notFound(`message type "${containingType}" not found`);
        }
        const extension = this.#registry.getExtensionFor(
          message,
          extensionNumber,
        );
        return extension
          ? this.#fileAnswer(extension.file)
          : notFound(
              `extension ${extensionNumber} of "${containingType}" not found`,
            );
      }
      case "allExtensionNumbersOfType": {
        const typeName = req.value.replace(/^\./, "");
        if (!this.#registry.getMessage(typeName)) {
          return notFound(`message type "${req.value}" not found`);
        }
        const numbers: number[] = [];
        for (const desc of this.#registry) {
          if (desc.kind === "extension" && desc.extendee.typeName === typeName) {
            numbers.push(desc.number);
          }
        }
        numbers.sort((a, b) => a - b);
        return {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: typeName, extensionNumber: numbers },
        };
      }
      default:
        return {
          case: "errorResponse",
          value: {
            errorCode: Code.InvalidArgument,
            errorMessage: "message_request is not set",
          },
        };
    }
  }

  /**
   * A file descriptor answer: the file first, then each of its transitive
   * dependencies exactly once.
   */
  #fileAnswer(root: DescFile): ReflectionAnswer {
    const seen = new Set<string>();
    const out: Uint8Array[] = [];
    // Breadth-first, so the requested file comes first.
    const queue: DescFile[] = [root];
    for (let i = 0; i < queue.length; i++) {
      const file = queue[i];
      if (file === undefined || seen.has(file.proto.name)) {
        continue;
      }
      seen.add(file.proto.name);
      out.push(this.#encode(file));
      queue.push(...file.dependencies);
    }
    return {
      case: "fileDescriptorResponse",
      value: { fileDescriptorProto: out },
    };
  }

  #encode(file: DescFile): Uint8Array {
    let bytes = this.#encoded.get(file.proto.name);
    if (!bytes) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      this.#encoded.set(file.proto.name, bytes);
    }
    return bytes;
  }

  /**
   * Indexes every symbol a client may ask for: messages, enums, extensions,
   * services, methods (`pkg.Svc.Method`), fields and oneofs
   * (`pkg.Msg.field`), and enum values, both as `pkg.Enum.VALUE` and in
   * protobuf's own sibling scope (`pkg.VALUE`).
   */
  #indexSymbols(): void {
    const add = (name: string, file: DescFile) => {
      if (!this.#symbols.has(name)) {
        this.#symbols.set(name, file);
      }
    };
    for (const desc of this.#registry) {
      add(desc.typeName, desc.file);
      switch (desc.kind) {
        case "service":
          for (const method of desc.methods) {
            add(`${desc.typeName}.${method.name}`, desc.file);
          }
          break;
        case "message":
          for (const field of desc.fields) {
            add(`${desc.typeName}.${field.name}`, desc.file);
          }
          for (const oneof of desc.oneofs) {
            add(`${desc.typeName}.${oneof.name}`, desc.file);
          }
          break;
        case "enum": {
          const dot = desc.typeName.lastIndexOf(".");
          const scope = dot < 0 ? "" : `${desc.typeName.slice(0, dot)}.`;
          for (const value of desc.values) {
            add(`${desc.typeName}.${value.name}`, desc.file);
            add(`${scope}${value.name}`, desc.file);
          }
          break;
        }
        default:
          break;
      }
    }
  }
}

/**
 * The FileDescriptorProtos of `files` and all their transitive dependencies,
 * each once, every file after its dependencies (the order a
 * FileDescriptorSet must have for `createFileRegistry`).
 */
function collectProtos(files: readonly DescFile[]): FileDescriptorProto[] {
  const seen = new Set<string>();
  const out: FileDescriptorProto[] = [];
  const visit = (file: DescFile) => {
    if (seen.has(file.proto.name)) {
      return;
    }
    seen.add(file.proto.name);
    for (const dep of file.dependencies) {
      visit(dep);
    }
    out.push(file.proto);
  };
  for (const file of files) {
    visit(file);
  }
  return out;
}

function notFound(errorMessage: string): ReflectionAnswer {
  return {
    case: "errorResponse",
    value: { errorCode: Code.NotFound, errorMessage },
  };
}

/**
 * Builds the response to one request of the bidi `ServerReflectionInfo`
 * stream. `valid_host` echoes the request's `host` and `original_request` is
 * the request itself, as the reflection protocol asks.
 */
function respond<R extends ReflectionRequest>(
  responder: ReflectionResponder,
  request: R,
): { validHost: string; originalRequest: R; messageResponse: ReflectionAnswer } {
  return {
    validHost: request.host,
    originalRequest: request,
    messageResponse: responder.answer(request),
  };
}

/**
 * Registers gRPC server reflection on `router`, in both the
 * `grpc.reflection.v1` and the `grpc.reflection.v1alpha` flavour.
 *
 * `list_services` answers with every service declared in `files`; the file,
 * symbol and extension queries are answered from `files` and all their
 * transitive imports (for example `google/protobuf/struct.proto`). A file
 * answer holds the requested file followed by each of its transitive
 * dependencies, once. Unknown names are answered with an `error_response`
 * with code 5 (NOT_FOUND) rather than by failing the stream.
 *
 * @param router - The Connect router to add the two services to.
 * @param files - The files of the services exposed by this server, e.g.
 *   `file_hookline_v1_event_ingest`, `file_grpc_health_v1_health` and the
 *   reflection files themselves.
 */
export function registerReflection(
  router: ConnectRouter,
  files: DescFile[],
): void {
  const responder = new ReflectionResponder(files);
  // One response per request, in order. Failures are reported in-band as
  // error_response; the stream only ends when the client closes its side.
  router.service(ServerReflectionV1, {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        yield respond(responder, request);
      }
    },
  });
  router.service(ServerReflectionV1alpha, {
    async *serverReflectionInfo(requests) {
      for await (const request of requests) {
        yield respond(responder, request);
      }
    },
  });
}

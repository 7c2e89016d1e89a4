import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import type { DescFile, MessageInitShape } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_descriptor,
} from "@bufbuild/protobuf/wkt";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { file_grpc_health_v1_health } from "../../gen/grpc/health/v1/health_pb.js";
import {
  ServerReflection,
  type ServerReflectionRequestSchema,
  type ServerReflectionResponse,
  file_grpc_reflection_v1_reflection,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflection as ServerReflectionV1alpha,
  file_grpc_reflection_v1alpha_reflection,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { file_hookline_v1_event_ingest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { file_hookline_v1_webhook_admin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { registerReflection } from "../../src/api/reflection.js";

const FILES: DescFile[] = [
  file_hookline_v1_event_ingest,
  file_hookline_v1_webhook_admin,
  file_grpc_health_v1_health,
  file_grpc_reflection_v1_reflection,
  file_grpc_reflection_v1alpha_reflection,
];

/** A proto3 file declaring a custom option, to exercise the extension queries. */
function extensionFile(): DescFile {
  const proto = create(FileDescriptorProtoSchema, {
    name: "test/options.proto",
    package: "test",
    syntax: "proto3",
    dependency: ["google/protobuf/descriptor.proto"],
    extension: [
      {
        name: "audit",
        number: 50001,
        label: FieldDescriptorProto_Label.OPTIONAL,
        type: FieldDescriptorProto_Type.STRING,
        extendee: ".google.protobuf.MessageOptions",
        jsonName: "audit",
      },
    ],
  });
  const file = createFileRegistry(proto, (name) =>
    name === "google/protobuf/descriptor.proto"
      ? file_google_protobuf_descriptor
      : undefined,
  ).getFile("test/options.proto");
  if (!file) {
    throw new Error("test/options.proto did not load");
  }
  return file;
}

type Request = MessageInitShape<typeof ServerReflectionRequestSchema>;

async function* fromArray<T>(items: T[]): AsyncIterable<T> {
  for (const item of items) {
    yield item;
  }
}

function v1Client(files: DescFile[] = FILES) {
  const transport = createRouterTransport((router) =>
    registerReflection(router, files),
  );
  return createClient(ServerReflection, transport);
}

/** Sends `requests` on one v1 stream and collects every response. */
async function exchange(
  requests: Request[],
  files: DescFile[] = FILES,
): Promise<ServerReflectionResponse[]> {
  const responses: ServerReflectionResponse[] = [];
  for await (const res of v1Client(files).serverReflectionInfo(
    fromArray(requests),
  )) {
    responses.push(res);
  }
  return responses;
}

async function ask(
  request: Request,
  files: DescFile[] = FILES,
): Promise<ServerReflectionResponse> {
  const responses = await exchange([request], files);
  expect(responses).toHaveLength(1);
  return responses[0] as ServerReflectionResponse;
}

/** The names of the files in a file_descriptor_response, in order. */
function fileNames(res: ServerReflectionResponse): string[] {
  if (res.messageResponse.case !== "fileDescriptorResponse") {
    throw new Error(
      `expected a file_descriptor_response, got ${res.messageResponse.case}: ${JSON.stringify(res.messageResponse.value)}`,
    );
  }
  return res.messageResponse.value.fileDescriptorProto.map(
    (bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name,
  );
}

function expectNotFound(res: ServerReflectionResponse, mention: string): void {
  expect(res.messageResponse.case).toBe("errorResponse");
  if (res.messageResponse.case === "errorResponse") {
    expect(res.messageResponse.value.errorCode).toBe(5);
    expect(res.messageResponse.value.errorMessage).toContain(mention);
  }
}

describe("server reflection v1", () => {
  it("lists every exposed service and echoes host and request", async () => {
    const res = await ask({
      host: "api.example.test",
      messageRequest: { case: "listServices", value: "*" },
    });
    expect(res.validHost).toBe("api.example.test");
    expect(res.originalRequest?.messageRequest).toEqual({
      case: "listServices",
      value: "*",
    });
    expect(res.messageResponse.case).toBe("listServicesResponse");
    const names =
      res.messageResponse.case === "listServicesResponse"
        ? res.messageResponse.value.service.map((s) => s.name)
        : [];
    expect(names).toEqual(
      expect.arrayContaining([
        "hookline.v1.EventIngest",
        "hookline.v1.WebhookAdmin",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
      ]),
    );
    expect(names).toHaveLength(5);
  });

  it("answers file_containing_symbol for a service with the file and its imports", async () => {
    const res = await ask({
      messageRequest: {
        case: "fileContainingSymbol",
        value: "hookline.v1.EventIngest",
      },
    });
    const names = fileNames(res);
    expect(names[0]).toBe("hookline/v1/event_ingest.proto");
    expect(names).toContain("google/protobuf/struct.proto");
    expect(names).toHaveLength(2);
  });

  it("answers a method symbol", async () => {
    const res = await ask({
      messageRequest: {
        case: "fileContainingSymbol",
        value: "hookline.v1.EventIngest.Publish",
      },
    });
    expect(fileNames(res)[0]).toBe("hookline/v1/event_ingest.proto");
  });

  it("answers message, field and enum value symbols", async () => {
    const [message, field, enumValue] = await exchange([
      {
        messageRequest: {
          case: "fileContainingSymbol",
          value: "hookline.v1.PublishRequest",
        },
      },
      {
        messageRequest: {
          case: "fileContainingSymbol",
          value: "hookline.v1.PublishRequest.tenant_id",
        },
      },
      {
        messageRequest: {
          case: "fileContainingSymbol",
          value: "grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING",
        },
      },
    ]);
    expect(fileNames(message as ServerReflectionResponse)[0]).toBe(
      "hookline/v1/event_ingest.proto",
    );
    expect(fileNames(field as ServerReflectionResponse)[0]).toBe(
      "hookline/v1/event_ingest.proto",
    );
    expect(fileNames(enumValue as ServerReflectionResponse)).toEqual([
      "grpc/health/v1/health.proto",
    ]);
  });

  it("sends every transitive dependency exactly once, requested file first", async () => {
    const res = await ask({
      messageRequest: {
        case: "fileContainingSymbol",
        value: "hookline.v1.WebhookAdmin",
      },
    });
    const names = fileNames(res);
    expect(names[0]).toBe("hookline/v1/webhook_admin.proto");
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(
      expect.arrayContaining([
        "hookline/v1/endpoint.proto",
        "hookline/v1/delivery.proto",
        "hookline/v1/api_key.proto",
        "google/protobuf/timestamp.proto",
        "google/protobuf/duration.proto",
        "google/protobuf/field_mask.proto",
        "google/protobuf/struct.proto",
      ]),
    );
    // Every import of every file sent is itself in the answer.
    const res2 = res.messageResponse;
    if (res2.case === "fileDescriptorResponse") {
      for (const bytes of res2.value.fileDescriptorProto) {
        const proto = fromBinary(FileDescriptorProtoSchema, bytes);
        for (const dep of proto.dependency) {
          expect(names).toContain(dep);
        }
      }
    }
  });

  it("answers file_by_filename, including imported files", async () => {
    const [own, imported] = await exchange([
      {
        messageRequest: {
          case: "fileByFilename",
          value: "hookline/v1/event_ingest.proto",
        },
      },
      {
        messageRequest: {
          case: "fileByFilename",
          value: "google/protobuf/struct.proto",
        },
      },
    ]);
    expect(fileNames(own as ServerReflectionResponse)).toEqual([
      "hookline/v1/event_ingest.proto",
      "google/protobuf/struct.proto",
    ]);
    expect(fileNames(imported as ServerReflectionResponse)).toEqual([
      "google/protobuf/struct.proto",
    ]);
  });

  it("answers unknown names with NOT_FOUND and keeps the stream open", async () => {
    const responses = await exchange([
      {
        messageRequest: {
          case: "fileContainingSymbol",
          value: "hookline.v1.NoSuchService",
        },
      },
      {
        messageRequest: {
          case: "fileContainingSymbol",
          value: "hookline.v1.EventIngest.NoSuchMethod",
        },
      },
      {
        messageRequest: { case: "fileByFilename", value: "nope/v1/nope.proto" },
      },
      { messageRequest: { case: "listServices", value: "" } },
    ]);
    expect(responses).toHaveLength(4);
    expectNotFound(
      responses[0] as ServerReflectionResponse,
      "hookline.v1.NoSuchService",
    );
    expectNotFound(
      responses[1] as ServerReflectionResponse,
      "hookline.v1.EventIngest.NoSuchMethod",
    );
    expectNotFound(
      responses[2] as ServerReflectionResponse,
      "nope/v1/nope.proto",
    );
    expect(responses[3]?.messageResponse.case).toBe("listServicesResponse");
    expect(responses[0]?.originalRequest?.messageRequest.value).toBe(
      "hookline.v1.NoSuchService",
    );
  });

  it("answers extension queries from what the registry knows", async () => {
    const files = [...FILES, extensionFile()];
    const [byExt, numbers, unknownExt, noExtensions, unknownType] =
      await exchange(
        [
          {
            messageRequest: {
              case: "fileContainingExtension",
              value: {
                containingType: "google.protobuf.MessageOptions",
                extensionNumber: 50001,
              },
            },
          },
          {
            messageRequest: {
              case: "allExtensionNumbersOfType",
              value: "google.protobuf.MessageOptions",
            },
          },
          {
            messageRequest: {
              case: "fileContainingExtension",
              value: {
                containingType: "google.protobuf.MessageOptions",
                extensionNumber: 50002,
              },
            },
          },
          {
            messageRequest: {
              case: "allExtensionNumbersOfType",
              value: "hookline.v1.PublishRequest",
            },
          },
          {
            messageRequest: {
              case: "allExtensionNumbersOfType",
              value: "hookline.v1.NoSuchMessage",
            },
          },
        ],
        files,
      );
    expect(fileNames(byExt as ServerReflectionResponse)).toEqual([
      "test/options.proto",
      "google/protobuf/descriptor.proto",
    ]);
    expect(numbers?.messageResponse).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: {
        baseTypeName: "google.protobuf.MessageOptions",
        extensionNumber: [50001],
      },
    });
    expectNotFound(unknownExt as ServerReflectionResponse, "50002");
    expect(noExtensions?.messageResponse).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "hookline.v1.PublishRequest", extensionNumber: [] },
    });
    expectNotFound(
      unknownType as ServerReflectionResponse,
      "hookline.v1.NoSuchMessage",
    );
  });
});

describe("server reflection v1alpha", () => {
  it("answers list_services and file_containing_symbol", async () => {
    const transport = createRouterTransport((router) =>
      registerReflection(router, FILES),
    );
    const client = createClient(ServerReflectionV1alpha, transport);
    const responses = [];
    for await (const res of client.serverReflectionInfo(
      fromArray([
        { host: "h", messageRequest: { case: "listServices" as const, value: "" } },
        {
          messageRequest: {
            case: "fileContainingSymbol" as const,
            value: "hookline.v1.EventIngest.Publish",
          },
        },
        {
          messageRequest: {
            case: "fileContainingSymbol" as const,
            value: "hookline.v1.Missing",
          },
        },
      ]),
    )) {
      responses.push(res);
    }
    expect(responses).toHaveLength(3);
    const [list, symbol, missing] = responses;
    expect(list?.$typeName).toBe("grpc.reflection.v1alpha.ServerReflectionResponse");
    expect(list?.validHost).toBe("h");
    expect(
      list?.messageResponse.case === "listServicesResponse" &&
        list.messageResponse.value.service.map((s) => s.name),
    ).toEqual(
      expect.arrayContaining(["hookline.v1.EventIngest", "hookline.v1.WebhookAdmin"]),
    );
    expect(symbol?.messageResponse.case).toBe("fileDescriptorResponse");
    if (symbol?.messageResponse.case === "fileDescriptorResponse") {
      const names = symbol.messageResponse.value.fileDescriptorProto.map(
        (b) => fromBinary(FileDescriptorProtoSchema, b).name,
      );
      expect(names).toEqual([
        "hookline/v1/event_ingest.proto",
        "google/protobuf/struct.proto",
      ]);
    }
    expect(missing?.messageResponse).toMatchObject({
      case: "errorResponse",
      value: { errorCode: 5 },
    });
  });
});

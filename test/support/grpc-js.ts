/**
 * A plain gRPC client nobody here wrote: @grpc/grpc-js with stubs built at
 * run time from proto/ by @grpc/proto-loader.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const PROTO_DIR = fileURLToPath(new URL("../../proto", import.meta.url));

// biome-ignore lint/suspicious/noExplicitAny: dynamic stubs have no static types
type Json = any;

/** A unary caller over one dynamically loaded service. */
export interface DynamicService {
  call(method: string, request: Json): Promise<Json>;
  client: grpc.Client;
}

/**
 * Loads EventIngest and WebhookAdmin from the .proto files and connects to
 * `baseUrl` (h2c), with grpc-js channel `options` when given.
 */
export function grpcJsClients(baseUrl: string, options?: grpc.ChannelOptions): { ingest: DynamicService; admin: DynamicService; close(): void } {
  const definition = protoLoader.loadSync(["hookline/v1/event_ingest.proto", "hookline/v1/webhook_admin.proto"], {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as Json;
  const target = new URL(baseUrl).host;
  const credentials = grpc.credentials.createInsecure();
  const make = (Ctor: Json): DynamicService => {
    const client = new Ctor(target, credentials, options) as grpc.Client;
    return {
      client,
      call: (method, request) =>
        new Promise((resolve, reject) => {
          (client as Json)[method](request, (err: Error | null, res: Json) => (err ? reject(err) : resolve(res)));
        }),
    };
  };
  const ingest = make(loaded.hookline.v1.EventIngest);
  const admin = make(loaded.hookline.v1.WebhookAdmin);
  return {
    ingest,
    admin,
    close() {
      ingest.client.close();
      admin.client.close();
    },
  };
}

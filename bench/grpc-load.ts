/**
 * A lean gRPC load generator over one HTTP/2 connection (node:http2, gRPC
 * framing by hand, messages encoded once with protobuf-es), so that the
 * publisher spends little of this small machine's CPU and the figures show
 * Hookline, not the client. It checks every answer's grpc-status.
 */
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { PublishBatchRequestSchema } from "../gen/hookline/v1/event_ingest_pb.js";

/** A gRPC channel to one server, over a few HTTP/2 connections used in turn. */
export class GrpcLoad {
  private readonly sessions: http2.ClientHttp2Session[];
  private turn = 0;

  constructor(baseUrl: string, connections = 4) {
    this.sessions = Array.from({ length: connections }, () => {
      const s = http2.connect(baseUrl);
      s.on("error", () => {});
      return s;
    });
  }

  /** Sends one request stream (one message for unary) and resolves with the response message bytes. */
  call(path: string, messages: readonly Uint8Array[]): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const session = this.sessions[this.turn++ % this.sessions.length]!;
      const stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc+proto",
        te: "trailers",
      });
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("trailers", (trailers) => {
        const status = Number(trailers["grpc-status"]);
        if (status !== 0) reject(new Error(`grpc-status ${status}: ${trailers["grpc-message"] ?? ""}`));
      });
      stream.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve(body.subarray(5));
      });
      stream.on("error", reject);
      for (const m of messages) stream.write(frame(m));
      stream.end();
    });
  }

  close(): void {
    for (const s of this.sessions) s.close();
  }
}

/** A gRPC length-prefixed message frame. */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
}

/** The bench's event payload: about 230 bytes, with its number and its send time (ms since the epoch) for latency. */
export function benchPayload(i: number): string {
  return `{"i":${i},"t":${performance.timeOrigin + performance.now()},"pad":"${"x".repeat(200)}"}`;
}

/**
 * Publishes `total` events of tenant "bench" (type bench.event) through
 * `load`, in PublishBatch calls of `size`, `inFlight` calls at a time.
 */
export async function publishBatches(load: GrpcLoad, total: number, size: number, inFlight = 4): Promise<void> {
  const batch = () =>
    toBinary(
      PublishBatchRequestSchema,
      create(PublishBatchRequestSchema, {
        events: Array.from({ length: size }, (_, i) => ({ tenantId: "bench", eventType: "bench.event", payload: { case: "payloadJson" as const, value: benchPayload(i) } })),
      }),
    );
  let sent = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (sent < total) {
        sent += size;
        await load.call("/hookline.v1.EventIngest/PublishBatch", [batch()]);
      }
    }),
  );
}

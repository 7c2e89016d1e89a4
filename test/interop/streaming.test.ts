/**
 * Streaming RPCs through @grpc/grpc-js with stubs loaded from proto/ at run
 * time (a client nobody here wrote): PublishStream (client stream) and
 * WatchDeliveries (server stream), with cancellation; and buf curl watching
 * through reflection.
 */
import type * as grpc from "@grpc/grpc-js";
import { expect, it } from "vitest";
import { useTestDatabase } from "../support/database.js";
import { grpcJsClients } from "../support/grpc-js.js";
import { useTestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";

// biome-ignore lint/suspicious/noExplicitAny: dynamic stubs have no static types
type Json = any;

const r = useReceiver(() => ({ status: 200 }));
const db = useTestDatabase();
const app = useTestHookline(db);

it("publishes with a client stream and watches the deliveries with a server stream", async () => {
  const { admin, ingest, close } = grpcJsClients(app.url);
  try {
    await admin.call("CreateEndpoint", { tenant_id: "gjs", url: `${r.url}/gjs` });
    // Server stream first, live.
    const updates: Json[] = [];
    const watch = (admin.client as Json).WatchDeliveries({ tenant_id: "gjs" }) as grpc.ClientReadableStream<Json>;
    const ended = new Promise<Json>((resolve) => watch.on("error", resolve));
    watch.on("data", (u: Json) => updates.push(u));
    await expect.poll(() => app.updates.watcherCount).toBe(1);
    // Client stream: three events, one response with three results.
    const response = await new Promise<Json>((resolve, reject) => {
      const call = (ingest.client as Json).PublishStream((err: Error | null, res: Json) => (err ? reject(err) : resolve(res)));
      for (let i = 0; i < 3; i++) call.write({ tenant_id: "gjs", event_type: "t.e", payload_json: `{"i":${i}}` });
      call.end();
    });
    expect(response.results).toHaveLength(3);
    const ids = response.results.map((x: Json) => x.event_id);
    await expect.poll(() => updates.length, { timeout: 10_000 }).toBe(6);
    for (const id of ids) {
      expect(updates.filter((u) => u.event_id === id).map((u) => u.kind)).toEqual([
        "DELIVERY_UPDATE_KIND_CREATED",
        "DELIVERY_UPDATE_KIND_SUCCEEDED",
      ]);
    }
    watch.cancel();
    expect((await ended).code).toBe(1); // CANCELLED
    await expect.poll(() => app.updates.watcherCount).toBe(0);
  } finally {
    close();
  }
});

it("buf curl, through reflection and without a schema, watches the stream from a time", async () => {
  const { spawn } = await import("node:child_process");
  const { fileURLToPath } = await import("node:url");
  const BUF = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));
  const { admin, ingest, close } = grpcJsClients(app.url);
  try {
    await admin.call("CreateEndpoint", { tenant_id: "bufw", url: `${r.url}/bufw` });
    const since = new Date(Date.now() - 1_000).toISOString();
    const published = await ingest.call("Publish", { tenant_id: "bufw", event_type: "t.e", payload_json: "{}" });
    const child = spawn(BUF, [
      "curl",
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      "-d",
      JSON.stringify({ tenant_id: "bufw", since }),
      `${app.url}/hookline.v1.WebhookAdmin/WatchDeliveries`,
    ]);
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    try {
      await expect.poll(() => (out.match(/"kind":/g) ?? []).length, { timeout: 15_000 }).toBe(2);
    } finally {
      child.kill();
    }
    // buf curl prints each message as a JSON object.
    const messages = out
      .split(/\n(?=\{)/)
      .map((m) => JSON.parse(m) as { eventId: string; kind: string; status: string });
    expect(messages.map((m) => [m.eventId, m.kind, m.status])).toEqual([
      [published.event_id, "DELIVERY_UPDATE_KIND_CREATED", "DELIVERY_STATUS_PENDING"],
      [published.event_id, "DELIVERY_UPDATE_KIND_SUCCEEDED", "DELIVERY_STATUS_SUCCEEDED"],
    ]);
  } finally {
    close();
  }
});

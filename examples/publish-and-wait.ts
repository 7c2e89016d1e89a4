/**
 * Publish an event and wait for its outcome, with the TypeScript client.
 *
 *   HOOKLINE_URL=http://127.0.0.1:7070 HOOKLINE_TOKEN=... RECEIVER_URL=https://example.com/hooks \
 *     npx tsx examples/publish-and-wait.ts
 *
 * Creates an endpoint for RECEIVER_URL (tenant "acme", types "invoice.*"),
 * publishes one invoice.paid event, then watches that event's deliveries
 * until each has succeeded or failed, and prints one line per delivery.
 * HOOKLINE_PROTOCOL picks "connect" (default), "grpc" or "grpc-web".
 */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createHooklineClient, DeliveryStatus } from "hookline/client";

const protocol = (process.env.HOOKLINE_PROTOCOL ?? "connect") as "connect" | "grpc" | "grpc-web";
const hookline = createHooklineClient({
  baseUrl: process.env.HOOKLINE_URL ?? "http://127.0.0.1:7070",
  token: process.env.HOOKLINE_TOKEN,
  protocol,
});

const { endpoint } = await hookline.admin.createEndpoint({
  tenantId: "acme",
  url: process.env.RECEIVER_URL ?? "https://example.com/hooks",
  eventTypes: ["invoice.*"],
});
console.log(`endpoint ${endpoint!.id}`);

// A moment before publishing (a little earlier, for clock skew): the watch
// replays from there, so no outcome can slip by between the two calls.
const before = new Date(Date.now() - 1_000);
const published = await hookline.ingest.publish({
  tenantId: "acme",
  eventType: "invoice.paid",
  payload: { case: "payloadJson", value: JSON.stringify({ invoiceId: "inv_42", amount: 1999 }) },
  idempotencyKey: `inv_42-paid-${Date.now()}`,
});
console.log(`event ${published.eventId}, ${published.deliveryCount} deliveries`);

const abort = new AbortController();
try {
  let ended = 0;
  const updates = hookline.admin.watchDeliveries(
    {
      eventId: published.eventId,
      since: timestampFromDate(before),
      statuses: [DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED],
    },
    { signal: abort.signal },
  );
  for await (const u of updates) {
    console.log(`delivery ${u.deliveryId}: ${DeliveryStatus[u.status]} (HTTP ${u.responseStatus}, attempt ${u.attemptNumber})`);
    if (++ended === published.deliveryCount) break;
  }
} finally {
  // Leaving the loop does not end the call: cancel it.
  abort.abort();
}

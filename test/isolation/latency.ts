/**
 * Publish-to-receiver latency, as a tenant sees it: events published one at
 * a time, each timed from the moment its Publish was sent to the moment the
 * receiver got it (matched by `webhook-id`, the event id).
 */
import type { Client } from "@connectrpc/connect";
import type { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import type { Receiver } from "../support/receiver.js";

/**
 * Publishes `n` events for `tenantId`, `gapMs` apart, and returns each one's
 * latency to `receiver` in ms, in publish order. Rejects when one has not
 * arrived within `timeoutMs` of its publish.
 */
export async function arrivalLatencies(
  ingest: Client<typeof EventIngest>,
  receiver: Receiver,
  tenantId: string,
  n: number,
  { gapMs = 10, timeoutMs = 15_000 }: { gapMs?: number; timeoutMs?: number } = {},
): Promise<number[]> {
  const sent = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const at = Date.now();
    const { eventId } = await ingest.publish({ tenantId, eventType: "probe.e", payload: { case: "payloadJson", value: `{"i":${i}}` } });
    sent.set(eventId, at);
    await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const arrived = new Map<string, number>();
    for (const r of receiver.requests) {
      const id = r.headers["webhook-id"];
      if (typeof id === "string" && sent.has(id) && !arrived.has(id)) arrived.set(id, r.at);
    }
    if (arrived.size === sent.size) return [...sent].map(([id, at]) => arrived.get(id)! - at);
    if (Date.now() > deadline) {
      throw new Error(`${sent.size - arrived.size} of ${sent.size} events of ${tenantId} did not arrive within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The `q` quantile (0..1) of `values`, nearest rank. */
export function percentile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

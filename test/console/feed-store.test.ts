/**
 * The live feed's stream (console/src/feed-store.ts) against a stand-in
 * client: it reconnects after a dropped stream and resumes after the last
 * cursor, stops on answers another try cannot fix, and keeps or resets its
 * rows as the filter or the start changes.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it, vi } from "vitest";
import type { FeedFilter } from "../../console/src/feed-rows.js";
import { type FeedState, FeedStore } from "../../console/src/feed-store.js";
import type { AdminClient } from "../../console/src/rpc.js";
import { type DeliveryUpdate, DeliveryStatus, DeliveryUpdateKind, DeliveryUpdateSchema } from "../../gen/hookline/v1/delivery_pb.js";

const ANY: FeedFilter = { tenantId: "", endpointId: "", eventTypes: [], statuses: [], start: "now" };

function update(cursor: string, deliveryId: string, status: DeliveryStatus, eventType = "invoice.paid"): DeliveryUpdate {
  return create(DeliveryUpdateSchema, {
    cursor,
    kind: status === DeliveryStatus.PENDING ? DeliveryUpdateKind.CREATED : DeliveryUpdateKind.SUCCEEDED,
    deliveryId,
    eventId: `evt_${deliveryId}`,
    endpointId: "ep_1",
    tenantId: "acme",
    eventType,
    status,
  });
}

/** One stream: its updates, then an error, the end of the stream (as when Hookline restarts), or open until aborted. */
type Script = { updates: DeliveryUpdate[]; after?: Error | "end" | "open" };

/** A client whose n-th WatchDeliveries call plays scripts[n]; the requests are kept. */
function fakeClient(scripts: Script[]) {
  const requests: Record<string, unknown>[] = [];
  const client = {
    watchDeliveries(request: Record<string, unknown>, options: { signal: AbortSignal }) {
      const script = scripts[requests.length] ?? { updates: [] };
      requests.push(request);
      return (async function* () {
        for (const u of script.updates) yield u;
        if (script.after instanceof Error) throw script.after;
        if (script.after === "end") return;
        await new Promise((resolve) => options.signal.addEventListener("abort", resolve));
      })();
    },
  };
  return { client: client as unknown as AdminClient, requests };
}

function statesOf(store: FeedStore): FeedState["kind"][] {
  const states: FeedState["kind"][] = [];
  store.subscribe(() => {
    if (states.at(-1) !== store.state.kind) states.push(store.state.kind);
  });
  return states;
}

describe("the live feed's stream", () => {
  it("reconnects after a dropped stream and resumes right after the last cursor", async () => {
    const { client, requests } = fakeClient([
      {
        updates: [update("1-1", "a", DeliveryStatus.PENDING), update("2-1", "a", DeliveryStatus.SUCCEEDED)],
        after: new ConnectError("network error", Code.Unavailable),
      },
      { updates: [update("3-1", "b", DeliveryStatus.PENDING)] },
    ]);
    const store = new FeedStore();
    const states = statesOf(store);
    store.follow(client, "", ANY);
    try {
      await vi.waitFor(() => expect(store.rows.map((r) => r.deliveryId)).toEqual(["b", "a"]), { timeout: 5_000 });
      expect(requests).toHaveLength(2);
      expect(requests[0]).toMatchObject({ afterCursor: "", since: undefined });
      expect(requests[1]).toMatchObject({ afterCursor: "2-1", since: undefined });
      expect(store.rows[1]!.status).toBe(DeliveryStatus.SUCCEEDED);
      expect(states).toContain("reconnecting");
      expect(store.state.kind).toBe("live");
      expect(store.updates).toBe(3);
    } finally {
      store.stop();
    }
  });

  it("reconnects when Hookline ends the stream (a restart), and stops for good on UNAUTHENTICATED", async () => {
    const { client, requests } = fakeClient([
      { updates: [update("1-1", "a", DeliveryStatus.PENDING)], after: "end" },
      { updates: [], after: new ConnectError("missing token", Code.Unauthenticated) },
    ]);
    const store = new FeedStore();
    store.follow(client, "", ANY);
    try {
      await vi.waitFor(() => expect(store.state.kind).toBe("stopped"), { timeout: 5_000 });
      expect(requests).toHaveLength(2);
      expect(requests[1]).toMatchObject({ afterCursor: "1-1" });
      expect(store.state).toMatchObject({ kind: "stopped", problem: { kind: "unauthenticated", code: "UNAUTHENTICATED" } });
      expect(store.rows).toHaveLength(1);
    } finally {
      store.stop();
    }
  });

  it("keeps the rows that still match when the filter changes, and starts afresh from another start or token", async () => {
    const { client, requests } = fakeClient([
      { updates: [update("1-1", "a", DeliveryStatus.SUCCEEDED, "invoice.paid"), update("2-1", "b", DeliveryStatus.SUCCEEDED, "order.created")] },
      { updates: [] },
      { updates: [] },
      { updates: [] },
    ]);
    const store = new FeedStore();
    try {
      store.follow(client, "token-1", ANY);
      await vi.waitFor(() => expect(store.rows).toHaveLength(2));

      store.follow(client, "token-1", { ...ANY, eventTypes: ["invoice.*"] });
      expect(store.rows.map((r) => r.deliveryId)).toEqual(["a"]);
      await vi.waitFor(() => expect(requests).toHaveLength(2));
      expect(requests[1]).toMatchObject({ eventTypes: ["invoice.*"], afterCursor: "2-1" });

      store.follow(client, "token-1", { ...ANY, eventTypes: ["invoice.*"], start: "1h" });
      expect(store.rows).toEqual([]);
      await vi.waitFor(() => expect(requests).toHaveLength(3));
      expect(requests[2]).toMatchObject({ afterCursor: "" });
      expect(requests[2]!.since).toBeDefined();

      store.follow(client, "token-2", { ...ANY, eventTypes: ["invoice.*"], start: "1h" });
      await vi.waitFor(() => expect(requests).toHaveLength(4));
      expect(requests[3]).toMatchObject({ afterCursor: "" });
    } finally {
      store.stop();
    }
  });
});

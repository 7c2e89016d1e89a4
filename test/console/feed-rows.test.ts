/** The live feed's model (console/src/feed-rows.ts): rows from updates, filters from URLs, requests from filters. */
import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  applyUpdate,
  type FeedFilter,
  type FeedRow,
  filterFromParams,
  paramsOfFilter,
  rowMatches,
  watchRequest,
} from "../../console/src/feed-rows.js";
import { DeliveryStatus, DeliveryUpdateKind, DeliveryUpdateSchema } from "../../gen/hookline/v1/delivery_pb.js";

let position = 0;
function update(deliveryId: string, kind: DeliveryUpdateKind, status: DeliveryStatus, more: Partial<{ attemptNumber: number; responseStatus: number; error: string; eventType: string }> = {}) {
  position++;
  return create(DeliveryUpdateSchema, {
    cursor: `${position}-1`,
    kind,
    deliveryId,
    eventId: `evt_${deliveryId}`,
    endpointId: "ep_1",
    tenantId: "acme",
    eventType: more.eventType ?? "invoice.paid",
    status,
    attemptNumber: more.attemptNumber ?? 0,
    responseStatus: more.responseStatus ?? 0,
    error: more.error ?? "",
    occurredAt: timestampFromDate(new Date(1_700_000_000_000 + position * 1_000)),
  });
}

const ids = (rows: readonly FeedRow[]) => rows.map((r) => r.deliveryId);
const ANY: FeedFilter = { tenantId: "", endpointId: "", eventTypes: [], statuses: [], start: "now" };

describe("feed rows", () => {
  it("puts a new delivery on top and updates a known one in place", () => {
    let rows = applyUpdate([], update("a", DeliveryUpdateKind.CREATED, DeliveryStatus.PENDING));
    rows = applyUpdate(rows, update("b", DeliveryUpdateKind.CREATED, DeliveryStatus.PENDING));
    rows = applyUpdate(rows, update("a", DeliveryUpdateKind.RETRY_SCHEDULED, DeliveryStatus.RETRYING, { attemptNumber: 1, responseStatus: 500, error: "HTTP 500" }));
    expect(ids(rows)).toEqual(["b", "a"]);
    expect(rows[1]).toMatchObject({ status: DeliveryStatus.RETRYING, attempts: 1, responseStatus: 500, error: "HTTP 500", cursor: `${position}-1` });

    // A requeue keeps the last response and clears the error; the next attempt replaces both.
    rows = applyUpdate(rows, update("a", DeliveryUpdateKind.REQUEUED, DeliveryStatus.PENDING));
    expect(rows[1]).toMatchObject({ status: DeliveryStatus.PENDING, attempts: 1, responseStatus: 500, error: "" });
    rows = applyUpdate(rows, update("a", DeliveryUpdateKind.SUCCEEDED, DeliveryStatus.SUCCEEDED, { attemptNumber: 2, responseStatus: 204 }));
    expect(rows[1]).toMatchObject({ status: DeliveryStatus.SUCCEEDED, attempts: 2, responseStatus: 204, error: "" });
    expect(rows[1]!.updatedAt).toEqual(new Date(1_700_000_000_000 + position * 1_000));

    // Failed without an attempt (endpoint deleted): the reason shows, the attempts stay.
    rows = applyUpdate(rows, update("b", DeliveryUpdateKind.FAILED, DeliveryStatus.FAILED, { error: "endpoint deleted" }));
    expect(rows[0]).toMatchObject({ status: DeliveryStatus.FAILED, attempts: 0, error: "endpoint deleted" });
  });

  it("keeps at most the limit, dropping the oldest deliveries", () => {
    let rows: FeedRow[] = [];
    for (const id of ["a", "b", "c", "d"]) rows = applyUpdate(rows, update(id, DeliveryUpdateKind.CREATED, DeliveryStatus.PENDING), 3);
    expect(ids(rows)).toEqual(["d", "c", "b"]);
    // An update of a kept delivery does not push anything out.
    rows = applyUpdate(rows, update("b", DeliveryUpdateKind.SUCCEEDED, DeliveryStatus.SUCCEEDED, { attemptNumber: 1, responseStatus: 200 }), 3);
    expect(ids(rows)).toEqual(["d", "c", "b"]);
  });

  it("matches rows by the rules Hookline filters the stream with", () => {
    const row = applyUpdate([], update("a", DeliveryUpdateKind.SUCCEEDED, DeliveryStatus.SUCCEEDED, { eventType: "invoice.paid" }))[0]!;
    expect(rowMatches(row, ANY)).toBe(true);
    expect(rowMatches(row, { ...ANY, eventTypes: ["invoice.*"] })).toBe(true);
    expect(rowMatches(row, { ...ANY, eventTypes: ["order.created", "invoice.paid"] })).toBe(true);
    expect(rowMatches(row, { ...ANY, eventTypes: ["invoice"] })).toBe(false);
    expect(rowMatches(row, { ...ANY, eventTypes: ["invoice.paid.*"] })).toBe(false);
    expect(rowMatches(row, { ...ANY, eventTypes: ["order.*"] })).toBe(false);
    expect(rowMatches(row, { ...ANY, tenantId: "acme", endpointId: "ep_1" })).toBe(true);
    expect(rowMatches(row, { ...ANY, tenantId: "globex" })).toBe(false);
    expect(rowMatches(row, { ...ANY, endpointId: "ep_2" })).toBe(false);
    expect(rowMatches(row, { ...ANY, statuses: [DeliveryStatus.FAILED, DeliveryStatus.SUCCEEDED] })).toBe(true);
    expect(rowMatches(row, { ...ANY, statuses: [DeliveryStatus.FAILED] })).toBe(false);
  });
});

describe("feed filters", () => {
  it("reads a filter from URL parameters and writes it back", () => {
    const filter = filterFromParams(new URLSearchParams("tenant=acme&endpoint=ep_1&types=invoice.*,+order.created&status=failed,RETRYING,bogus&start=1h"));
    expect(filter).toEqual({
      tenantId: "acme",
      endpointId: "ep_1",
      eventTypes: ["invoice.*", "order.created"],
      statuses: [DeliveryStatus.FAILED, DeliveryStatus.RETRYING],
      start: "1h",
    });
    expect(paramsOfFilter(filter)).toEqual({ tenant: "acme", endpoint: "ep_1", types: "invoice.*,order.created", status: "FAILED,RETRYING", start: "1h" });
    expect(filterFromParams(new URLSearchParams())).toEqual(ANY);
    expect(paramsOfFilter(ANY).start).toBeUndefined();
  });

  it("asks for live updates from now, from a time, or right after the last cursor", () => {
    const now = Date.UTC(2026, 10, 23, 12, 0, 0);
    const filter: FeedFilter = { ...ANY, tenantId: "acme", eventTypes: ["invoice.*"], statuses: [DeliveryStatus.FAILED] };
    expect(watchRequest(filter, "", now)).toMatchObject({ tenantId: "acme", eventTypes: ["invoice.*"], statuses: [DeliveryStatus.FAILED], afterCursor: "", since: undefined });
    const hourAgo = watchRequest({ ...filter, start: "1h" }, "", now).since;
    expect(timestampDate(hourAgo as never)).toEqual(new Date(now - 3_600_000));
    const at = watchRequest({ ...filter, start: "2026-11-23T11:30:00.000Z" }, "", now).since;
    expect(timestampDate(at as never)).toEqual(new Date("2026-11-23T11:30:00.000Z"));
    // A cursor wins over the start: no gap and no repeat.
    expect(watchRequest({ ...filter, start: "1h" }, "42-7", now)).toMatchObject({ afterCursor: "42-7", since: undefined });
  });
});

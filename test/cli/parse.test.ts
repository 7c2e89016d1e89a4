/**
 * The CLI's pure parts, without a server: parsing flag values and JSON input,
 * building requests from flags, paging, and deciding when a watch reconnects
 * and from where.
 */
import { durationMs, timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import { ApiKeyScope } from "../../gen/hookline/v1/api_key_pb.js";
import { DeliveryStatus } from "../../gen/hookline/v1/delivery_pb.js";
import { SignatureScheme } from "../../gen/hookline/v1/endpoint_pb.js";
import { createRequest, updateRequest } from "../../src/cli/commands/endpoints.js";
import { publishSummary, renumberEvents } from "../../src/cli/commands/publish.js";
import { UsageError } from "../../src/cli/errors.js";
import { isTransient, resumeRequest } from "../../src/cli/follow.js";
import { chunks, eventFromData, eventFromJson, splitJsonItems } from "../../src/cli/json-input.js";
import { readPages } from "../../src/cli/paging.js";
import {
  parseDurationArg,
  parseHeader,
  parseList,
  parseRetryExponentialArg,
  parseRetryScheduleArg,
  parseScheme,
  parseScope,
  parseStatus,
  parseStatuses,
  parseTime,
  parseWholeSeconds,
} from "../../src/cli/parse.js";

describe("flag values", () => {
  it("durations use the configuration's syntax", () => {
    expect(durationMs(parseDurationArg("90s"))).toBe(90_000);
    expect(durationMs(parseDurationArg("2h"))).toBe(7_200_000);
    expect(durationMs(parseDurationArg("0"))).toBe(0);
    expect(() => parseDurationArg("soon")).toThrow(InvalidArgumentError);
  });

  it("timeouts are whole seconds; a bare number is seconds", () => {
    expect(parseWholeSeconds("30s")).toBe(30);
    expect(parseWholeSeconds("2m")).toBe(120);
    expect(parseWholeSeconds("15")).toBe(15);
    expect(() => parseWholeSeconds("1500ms")).toThrow(/whole seconds/);
  });

  it("times are RFC 3339, now, or a duration ago", () => {
    const now = Date.parse("2026-11-23T14:00:00Z");
    expect(timestampMs(parseTime("2026-11-23T13:00:00Z", now))).toBe(Date.parse("2026-11-23T13:00:00Z"));
    expect(timestampMs(parseTime("2026-11-23T15:00:00.250+02:00", now))).toBe(Date.parse("2026-11-23T13:00:00.250Z"));
    expect(timestampMs(parseTime("2026-11-23", now))).toBe(Date.parse("2026-11-23T00:00:00Z"));
    expect(timestampMs(parseTime("now", now))).toBe(now);
    expect(timestampMs(parseTime("10m", now))).toBe(now - 600_000);
    expect(timestampMs(parseTime("1d", now))).toBe(now - 86_400_000);
    for (const bad of ["yesterday", "2026-13-45T00:00:00Z", "23/11/2026"]) {
      expect(() => parseTime(bad, now), bad).toThrow(InvalidArgumentError);
    }
  });

  it("lists, headers, schemes and statuses", () => {
    expect(parseList("invoice.*, user.created,,")).toEqual(["invoice.*", "user.created"]);
    expect(parseList("")).toEqual([]);
    expect(parseHeader("Authorization: Bearer a:b")).toEqual(["Authorization", "Bearer a:b"]);
    expect(() => parseHeader("no-colon")).toThrow(/Name: value/);
    expect(parseScheme("GitHub")).toBe(SignatureScheme.GITHUB);
    expect(parseScheme("standard-webhooks")).toBe(SignatureScheme.STANDARD_WEBHOOKS);
    expect(() => parseScheme("hmac")).toThrow(InvalidArgumentError);
    expect(parseStatus("failed")).toBe(DeliveryStatus.FAILED);
    expect(parseStatus("DELIVERY_STATUS_PENDING")).toBe(DeliveryStatus.PENDING);
    expect(parseStatuses("succeeded, failed")).toEqual([DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED]);
    expect(() => parseStatus("unspecified")).toThrow(InvalidArgumentError);
    // Names of Object's prototype are not statuses.
    expect(() => parseStatus("constructor")).toThrow(InvalidArgumentError);
    expect(parseScope("Ingest")).toBe(ApiKeyScope.INGEST);
    expect(parseScope("API_KEY_SCOPE_ADMIN")).toBe(ApiKeyScope.ADMIN);
    expect(() => parseScope("root")).toThrow("expected ingest");
  });

  it("retry policies read like HOOKLINE_RETRY_SCHEDULE and HOOKLINE_RETRY_EXPONENTIAL, errors naming the flag", () => {
    const schedule = parseRetryScheduleArg("5s,5m").policy;
    expect(schedule.case === "schedule" && schedule.value.delays.map(durationMs)).toEqual([5_000, 300_000]);
    const none = parseRetryScheduleArg("none").policy;
    expect(none.case === "schedule" && none.value.delays).toEqual([]);
    const exponential = parseRetryExponentialArg("2s,1h,5").policy;
    expect(exponential.case).toBe("exponential");
    if (exponential.case === "exponential") {
      expect([durationMs(exponential.value.base!), durationMs(exponential.value.cap!), exponential.value.maxAttempts]).toEqual([
        2_000, 3_600_000, 5,
      ]);
    }
    expect(() => parseRetryScheduleArg("5s,soon")).toThrow(/--retry-schedule=soon/);
    expect(() => parseRetryExponentialArg("2s,1h")).toThrow(/--retry-exponential=2s,1h: expected base,cap,max_attempts/);
  });
});

describe("endpoint requests", () => {
  it("create leaves out what was not given", () => {
    expect(createRequest("https://x.example/h", { tenant: "acme" })).toEqual(
      expect.objectContaining({ tenantId: "acme", url: "https://x.example/h", eventTypes: undefined, headers: undefined }),
    );
    expect(createRequest("https://x.example/h", { tenant: "acme", header: [["A", "1"], ["B", "2"]] }).headers).toEqual({ A: "1", B: "2" });
  });

  it("update masks exactly the settings given, clearing ones included", () => {
    const req = updateRequest("ep_1", { endpointUrl: "https://x.example/v2", eventTypes: [], clearHeaders: true, ordered: false, disable: true });
    expect(req.updateMask!.paths).toEqual(["url", "event_types", "headers", "ordered", "disabled"]);
    expect(req.endpoint).toMatchObject({ id: "ep_1", url: "https://x.example/v2", eventTypes: [], headers: {}, ordered: false, disabled: true });
    expect(updateRequest("ep_1", { retryDefault: true }).updateMask!.paths).toEqual(["retry_policy"]);
    expect(updateRequest("ep_1", { enable: true, timeout: 0 }).updateMask!.paths).toEqual(["timeout_seconds", "disabled"]);
    expect(() => updateRequest("ep_1", {})).toThrow(UsageError);
  });
});

describe("JSON input", () => {
  it("tells one object from an array or NDJSON, keeping each object's text", () => {
    expect(splitJsonItems(' {"a": 1} \n', "x")).toEqual({ single: true, items: [{ value: { a: 1 }, text: '{"a": 1}', where: "" }] });
    const array = splitJsonItems('[{"a":1},{"b":2}]', "x");
    expect(array.single).toBe(false);
    expect(array.items.map((i) => i.text)).toEqual(['{"a":1}', '{"b":2}']);
    const ndjson = splitJsonItems('{"a": 1}\n\n{"b": 2}\n', "x");
    expect(ndjson.items.map((i) => [i.where, i.text])).toEqual([
      ["line 1", '{"a": 1}'],
      ["line 3", '{"b": 2}'],
    ]);
  });

  it("refuses what is not JSON objects, naming the line or element", () => {
    expect(() => splitJsonItems("", "f")).toThrow("f: is empty");
    expect(() => splitJsonItems("{nope", "f")).toThrow(/^f: not JSON/);
    expect(() => splitJsonItems('{"a":1}\n[1]', "f")).toThrow("f line 2: expected a JSON object");
    expect(() => splitJsonItems('{"a":1}\n{"a":', "f")).toThrow(/^f line 2: not JSON/);
    expect(() => splitJsonItems("[1]", "f")).toThrow("f element 1: expected a JSON object");
    expect(() => splitJsonItems("[]", "f")).toThrow("f: the array is empty");
    expect(() => splitJsonItems("42", "f")).toThrow("f: expected a JSON object");
  });

  it("makes events from data, or from whole PublishRequests with the command line's defaults", () => {
    const [item] = splitJsonItems('{"n": 1}', "x").items;
    expect(eventFromData(item!, { tenantId: "t", eventType: "a.b" }, "k")).toMatchObject({
      tenantId: "t",
      eventType: "a.b",
      idempotencyKey: "k",
      payload: { case: "payloadJson", value: '{"n": 1}' },
    });
    const [own, bare] = splitJsonItems('{"tenant_id":"own","eventType":"x.y","data":{"n":1}}\n{"payloadJson":"{}"}', "f").items;
    expect(eventFromJson(own!, { tenantId: "t", eventType: "d.e" }, "f")).toMatchObject({ tenantId: "own", eventType: "x.y" });
    expect(eventFromJson(bare!, { tenantId: "t", eventType: "d.e" }, "f")).toMatchObject({ tenantId: "t", eventType: "d.e" });
    const [typo] = splitJsonItems('{"evntType":"x"}', "f").items;
    expect(() => eventFromJson(typo!, {}, "f")).toThrow(/^f: .*evntType/);
  });

  it("chunks keep order and the remainder", () => {
    expect(chunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunks([], 2)).toEqual([]);
  });
});

describe("bulk publish", () => {
  it("numbers events in the whole input, not in the batch", () => {
    expect(renumberEvents("events[3].event_type: bad; events[0].tenant_id: bad", 500)).toBe(
      "events[503].event_type: bad; events[500].tenant_id: bad",
    );
  });

  it("sums up results", () => {
    expect(
      publishSummary([
        { eventId: "a", deliveryCount: 2, duplicate: false },
        { eventId: "b", deliveryCount: 0, duplicate: true },
      ] as never),
    ).toBe("published 2 events (1 new, 1 duplicate), 2 deliveries");
  });
});

describe("paging", () => {
  const list = Array.from({ length: 2_500 }, (_, i) => i);
  const fetch = async (pageSize: number, token: string) => {
    const start = token ? Number(token) : 0;
    const items = list.slice(start, start + pageSize);
    return { items, nextPageToken: start + pageSize < list.length ? String(start + pageSize) : "" };
  };

  it("reads pages up to the limit, or all with 0", async () => {
    expect(await readPages(10, fetch)).toEqual({ items: list.slice(0, 10), more: true });
    const all = await readPages(0, fetch);
    expect(all.items).toEqual(list);
    expect(all.more).toBe(false);
    expect((await readPages(1_500, fetch)).items).toHaveLength(1_500);
  });
});

describe("watch reconnects", () => {
  it("resume after the last cursor, else from the requested start, else from when a live watch began", () => {
    const liveFrom = timestampFromMs(1_000);
    const since = timestampFromMs(500);
    expect(resumeRequest({ tenantId: "t" }, "7-1", liveFrom)).toEqual({ tenantId: "t", afterCursor: "7-1", since: undefined });
    expect(resumeRequest({ tenantId: "t", since }, "7-1", liveFrom)).toEqual({ tenantId: "t", afterCursor: "7-1", since: undefined });
    expect(resumeRequest({ tenantId: "t", since }, "", liveFrom)).toEqual({ tenantId: "t", since });
    expect(resumeRequest({ afterCursor: "3-1" }, "", liveFrom)).toEqual({ afterCursor: "3-1" });
    expect(resumeRequest({ tenantId: "t" }, "", undefined)).toEqual({ tenantId: "t" });
    expect(resumeRequest({ tenantId: "t" }, "", liveFrom)).toEqual({ tenantId: "t", since: liveFrom });
  });

  it("only after failures that pass", () => {
    for (const code of [Code.Unavailable, Code.Unknown, Code.Internal, Code.Canceled]) expect(isTransient(code)).toBe(true);
    for (const code of [Code.InvalidArgument, Code.Unauthenticated, Code.PermissionDenied, Code.NotFound]) {
      expect(isTransient(code)).toBe(false);
    }
  });
});

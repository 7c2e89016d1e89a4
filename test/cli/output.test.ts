/**
 * What the CLI prints, without a server: tables, blocks, watch lines with and
 * without colour, progress on a terminal and in a pipe, and errors.
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import { CommanderError } from "commander";
import { stripVTControlCharacters } from "node:util";
import { describe, expect, it } from "vitest";
import { DeliveryStatus, DeliveryUpdateKind, DeliveryUpdateSchema } from "../../gen/hookline/v1/delivery_pb.js";
import { RetryPolicySchema } from "../../gen/hookline/v1/endpoint_pb.js";
import { codeName, describeError, ExitCode, fieldViolations, UsageError } from "../../src/cli/errors.js";
import {
  describeRetryPolicy,
  formatBlock,
  formatTable,
  formatUpdateLine,
  Output,
  Progress,
  useColour,
} from "../../src/cli/output.js";

function sink(isTTY = false) {
  const written: string[] = [];
  return { written, isTTY, write: (s: string) => written.push(s) };
}

const update = create(DeliveryUpdateSchema, {
  cursor: "769-2",
  kind: DeliveryUpdateKind.RETRY_SCHEDULED,
  deliveryId: "dlv_01M84QR8HV51F708DC762E1011",
  eventId: "evt_01M84QR8HVW17PGXT38R3Q9NTP",
  endpointId: "ep_01M84QR7ZT2M6C7EJG6YA11ZX3",
  tenantId: "acme",
  eventType: "invoice.paid",
  status: DeliveryStatus.RETRYING,
  attemptNumber: 1,
  responseStatus: 500,
  durationMs: 18n,
  error: "HTTP 500",
  nextAttemptAt: timestampFromMs(Date.parse("2026-11-23T17:37:40.795Z")),
  occurredAt: timestampFromMs(Date.parse("2026-11-23T17:37:39.925Z")),
});

describe("text output", () => {
  it("aligns tables and blocks without trailing spaces", () => {
    expect(
      formatTable(
        ["ID", "STATE", "URL"],
        [
          ["ep_1", "active", "https://a"],
          ["ep_22", "", "https://b"],
        ],
      ),
    ).toBe("ID     STATE   URL\nep_1   active  https://a\nep_22          https://b");
    expect(formatBlock([["id", "ep_1"], ["event types", "all"], ["description", ""]])).toBe(
      "id:           ep_1\nevent types:  all\ndescription:",
    );
    expect(formatBlock([["name", "a.b"], ["schema", '{\n  "type": "object"\n}']])).toBe(
      'name:    a.b\nschema:  {\n           "type": "object"\n         }',
    );
  });

  it("says retry policies in words", () => {
    expect(describeRetryPolicy(undefined)).toBe("default");
    const schedule = create(RetryPolicySchema, { policy: { case: "schedule", value: { delays: [durationFromMs(5_000), durationFromMs(300_000)] } } });
    expect(describeRetryPolicy(schedule)).toBe("5s, 5m");
    expect(describeRetryPolicy(create(RetryPolicySchema, { policy: { case: "schedule", value: {} } }))).toBe("none (one attempt)");
    const exponential = create(RetryPolicySchema, {
      policy: { case: "exponential", value: { base: durationFromMs(2_000), cap: durationFromMs(3_600_000), maxAttempts: 5 } },
    });
    expect(describeRetryPolicy(exponential)).toBe("exponential 2s to 1h, 5 attempts");
  });

  it("prints a status update as one line, with its cursor last", () => {
    expect(formatUpdateLine(update, false)).toBe(
      "2026-11-23T17:37:39.925Z RETRY_SCHEDULED   dlv_01M84QR8HV51F708DC762E1011 evt_01M84QR8HVW17PGXT38R3Q9NTP " +
        'ep_01M84QR7ZT2M6C7EJG6YA11ZX3 acme invoice.paid attempt=1 http=500 18ms error="HTTP 500" ' +
        "next=2026-11-23T17:37:40.795Z cursor=769-2",
    );
    const created = create(DeliveryUpdateSchema, { ...update, kind: DeliveryUpdateKind.CREATED, attemptNumber: 0, responseStatus: 0, error: "", nextAttemptAt: undefined });
    expect(formatUpdateLine(created, false)).toMatch(/ CREATED {11}dlv_\S+ evt_\S+ ep_\S+ acme invoice\.paid cursor=769-2$/);
  });

  it("colours only on a terminal without NO_COLOR", () => {
    expect(formatUpdateLine(update, true)).toContain("\x1b[33mRETRY_SCHEDULED");
    expect(stripVTControlCharacters(formatUpdateLine(update, true))).toBe(formatUpdateLine(update, false));
    expect(useColour({ isTTY: true, write() {} }, {})).toBe(true);
    expect(useColour({ isTTY: true, write() {} }, { NO_COLOR: "1" })).toBe(false);
    expect(useColour({ isTTY: true, write() {} }, { NO_COLOR: "" })).toBe(true);
    expect(useColour({ isTTY: false, write() {} }, {})).toBe(false);
  });

  it("keeps notes on stderr and JSON alone on stdout", () => {
    const stdout = sink();
    const stderr = sink();
    const out = new Output(true, false, stdout, stderr);
    out.list(DeliveryUpdateSchema, [update, update], () => "text");
    out.note("a note");
    expect(stdout.written.map((l) => JSON.parse(l).cursor)).toEqual(["769-2", "769-2"]);
    expect(stderr.written).toEqual(["a note\n"]);
  });
});

describe("progress", () => {
  it("rewrites one line on a terminal", () => {
    const tty = sink(true);
    const p = new Progress(tty);
    p.update("published 1/2 events");
    p.update("published 2/2 events");
    p.done();
    expect(tty.written.join("")).toBe("\r\x1b[2Kpublished 1/2 events\r\x1b[2Kpublished 2/2 events\r\x1b[2Kpublished 2/2 events\n");
  });

  it("writes lines elsewhere, at most one per interval, and the last one always", () => {
    const pipe = sink(false);
    let now = 0;
    const p = new Progress(pipe, 500, () => now);
    p.update("1");
    now = 100;
    p.update("2");
    now = 600;
    p.update("3");
    p.done("done");
    expect(pipe.written).toEqual(["1\n", "3\n", "done\n"]);
  });
});

describe("errors", () => {
  it("a ConnectError prints its code as the API documents it, with a hint where one helps", () => {
    expect(codeName(Code.NotFound)).toBe("NOT_FOUND");
    expect(codeName(Code.InvalidArgument)).toBe("INVALID_ARGUMENT");
    expect(describeError(new ConnectError("endpoint ep_1 not found", Code.NotFound), "u")).toEqual({
      lines: ["hookline: NOT_FOUND: endpoint ep_1 not found"],
      exitCode: ExitCode.failed,
    });
    const refused = describeError(new ConnectError("connect ECONNREFUSED 127.0.0.1:7070", Code.Unavailable), "http://127.0.0.1:7070");
    expect(refused.lines[1]).toBe("hookline: is Hookline running at http://127.0.0.1:7070? (set --url or HOOKLINE_URL)");
  });

  it("prints the field violations of a google.rpc.BadRequest detail", () => {
    const violation = (field: string, description: string) => new BinaryWriter().tag(1, 2).string(field).tag(2, 2).string(description).finish();
    const bytes = new BinaryWriter().tag(1, 2).bytes(violation("url", "must be https")).tag(1, 2).bytes(violation("tenant_id", "is required")).finish();
    expect(fieldViolations(bytes)).toEqual([
      { field: "url", description: "must be https" },
      { field: "tenant_id", description: "is required" },
    ]);
    expect(fieldViolations(new Uint8Array([0xff, 0xff]))).toEqual([]);
    const err = new ConnectError("bad request", Code.InvalidArgument);
    err.details.push({ type: "google.rpc.BadRequest", value: bytes });
    expect(describeError(err, "u").lines).toEqual([
      "hookline: INVALID_ARGUMENT: bad request",
      "hookline:   url: must be https",
      "hookline:   tenant_id: is required",
    ]);
  });

  it("usage errors exit with 2; commander has printed its own; --help exits with 0", () => {
    expect(describeError(new UsageError("publish: give <type> and <data>"), "u")).toEqual({
      lines: ["hookline: publish: give <type> and <data>"],
      exitCode: ExitCode.usage,
    });
    expect(describeError(new CommanderError(1, "commander.unknownOption", "error: unknown option"), "u")).toEqual({
      lines: [],
      exitCode: ExitCode.usage,
    });
    expect(describeError(new CommanderError(0, "commander.helpDisplayed", "(outputHelp)"), "u").exitCode).toBe(0);
  });
});

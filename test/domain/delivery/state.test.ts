/**
 * The delivery state machine on its own: its numbers against the API's
 * enums, and the whole transition table, status by event.
 */
import { describe, expect, it } from "vitest";
import { DeliveryStatus, DeliveryUpdateKind } from "../../../gen/hookline/v1/delivery_pb.js";
import {
  ALL_STATES,
  ATTEMPT_EVENTS,
  DeliveryEvent,
  DeliveryState,
  ENDED_STATES,
  LIVE_STATES,
  statusAfterAttempt,
  TRANSITIONS,
  transition,
  UpdateKind,
} from "../../../src/domain/delivery/state.js";

/** `RetryScheduled` -> `RETRY_SCHEDULED`, the proto enum's spelling. */
const protoName = (name: string) => name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();

/** A TypeScript enum's named numbers, without UNSPECIFIED (0). */
function protoValues(e: Record<string, string | number>): Record<string, number> {
  return Object.fromEntries(Object.entries(e).filter(([k, v]) => typeof v === "number" && k !== "UNSPECIFIED")) as Record<string, number>;
}

function ours(e: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [protoName(k), v]));
}

const { Pending, Retrying, Succeeded, Failed } = DeliveryState;
const E = DeliveryEvent;

/**
 * The whole table, written out: for each status (and "none", before the
 * delivery exists), what each event leads to, as [new status, log kind],
 * or null where the event cannot happen.
 */
const EXPECTED: Record<"none" | DeliveryState, Record<DeliveryEvent, [DeliveryState, UpdateKind] | null>> = {
  none: {
    [E.Created]: [Pending, UpdateKind.Created],
    [E.AttemptSucceeded]: null,
    [E.AttemptFailed]: null,
    [E.GivenUp]: null,
    [E.EndpointDisabled]: null,
    [E.EndpointDeleted]: null,
    [E.Requeued]: null,
  },
  [Pending]: {
    [E.Created]: null,
    [E.AttemptSucceeded]: [Succeeded, UpdateKind.Succeeded],
    [E.AttemptFailed]: [Retrying, UpdateKind.RetryScheduled],
    [E.GivenUp]: [Failed, UpdateKind.Failed],
    [E.EndpointDisabled]: [Failed, UpdateKind.EndpointDisabled],
    [E.EndpointDeleted]: [Failed, UpdateKind.EndpointDisabled],
    [E.Requeued]: [Retrying, UpdateKind.Requeued],
  },
  [Retrying]: {
    [E.Created]: null,
    [E.AttemptSucceeded]: [Succeeded, UpdateKind.Succeeded],
    [E.AttemptFailed]: [Retrying, UpdateKind.RetryScheduled],
    [E.GivenUp]: [Failed, UpdateKind.Failed],
    [E.EndpointDisabled]: [Failed, UpdateKind.EndpointDisabled],
    [E.EndpointDeleted]: [Failed, UpdateKind.EndpointDisabled],
    [E.Requeued]: [Retrying, UpdateKind.Requeued],
  },
  [Succeeded]: {
    [E.Created]: null,
    [E.AttemptSucceeded]: null,
    [E.AttemptFailed]: null,
    [E.GivenUp]: null,
    [E.EndpointDisabled]: null,
    [E.EndpointDeleted]: null,
    [E.Requeued]: [Retrying, UpdateKind.Requeued],
  },
  [Failed]: {
    [E.Created]: null,
    [E.AttemptSucceeded]: null,
    [E.AttemptFailed]: null,
    [E.GivenUp]: null,
    [E.EndpointDisabled]: null,
    [E.EndpointDeleted]: null,
    [E.Requeued]: [Retrying, UpdateKind.Requeued],
  },
};

describe("delivery states and log kinds", () => {
  it("are the numbers of the API's DeliveryStatus and DeliveryUpdateKind enums, every one of them", () => {
    expect(ours(DeliveryState)).toEqual(protoValues(DeliveryStatus));
    expect(ours(UpdateKind)).toEqual(protoValues(DeliveryUpdateKind));
  });

  it("split into live and ended statuses, each status in exactly one", () => {
    expect([...LIVE_STATES, ...ENDED_STATES].sort()).toEqual([...ALL_STATES].sort());
    expect(LIVE_STATES.filter((s) => ENDED_STATES.includes(s))).toEqual([]);
  });
});

describe("the transition table", () => {
  const froms: ("none" | DeliveryState)[] = ["none", ...ALL_STATES];

  it.each(froms)("from %s, leads each event where the state machine says", (from) => {
    const got = Object.fromEntries(
      Object.values(DeliveryEvent).map((event) => {
        const t = transition(from === "none" ? null : from, event);
        return [event, t ? [t.to, t.log] : null];
      }),
    );
    expect(got).toEqual(EXPECTED[from]);
  });

  it("has one row per event, and no event records the reserved ATTEMPT_STARTED", () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual(Object.values(DeliveryEvent).sort());
    for (const t of Object.values(TRANSITIONS)) expect(t.log).not.toBe(UpdateKind.AttemptStarted);
  });

  it("lets an ended delivery change only by being queued again", () => {
    for (const s of ENDED_STATES) {
      const possible = Object.values(DeliveryEvent).filter((e) => transition(s, e) !== undefined);
      expect(possible).toEqual([DeliveryEvent.Requeued]);
    }
  });
});

describe("the end of an attempt", () => {
  it("moves a delivery to the status of its event's transition", () => {
    expect(statusAfterAttempt(DeliveryEvent.AttemptSucceeded)).toBe(Succeeded);
    expect(statusAfterAttempt(DeliveryEvent.AttemptFailed)).toBe(Retrying);
    expect(statusAfterAttempt(DeliveryEvent.GivenUp)).toBe(Failed);
  });

  it("leads from every live status to the same place (claimed deliveries carry no status)", () => {
    for (const event of ATTEMPT_EVENTS) {
      const rows = LIVE_STATES.map((s) => transition(s, event));
      expect(rows.every((t) => t !== undefined && t === rows[0])).toBe(true);
    }
  });

  it("leads each way to a status of its own, so the outcome writer's status tells the log kind", () => {
    const statuses = ATTEMPT_EVENTS.map((e) => TRANSITIONS[e].to);
    expect(new Set(statuses).size).toBe(ATTEMPT_EVENTS.length);
  });
});

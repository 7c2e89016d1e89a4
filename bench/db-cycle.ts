/**
 * One event's trip through the database, as the scheduler makes it, for
 * bench/db-cost.ts: publish, take the new deliveries by id, then write each
 * a successful first attempt, in batches as the outcome writer does.
 *
 * Written against the store's operations only, so it measures whatever
 * table layout implements them.
 */

import type { AttemptOutcome } from "../src/domain/delivery/outcome.js";
import { DeliveryState } from "../src/domain/delivery/state.js";
import { newId } from "../src/domain/ids.js";
import { claimDue } from "../src/store/sql/claim-due.js";
import { insertEvents } from "../src/store/sql/insert-events.js";
import { recordOutcomes } from "../src/store/sql/record-outcomes.js";
import type { Store } from "../src/store/store.js";

/** How the cycle is run. */
export interface CycleOptions {
  events: number;
  /** Events per publish statement. */
  batch: number;
  /** Outcomes per write. */
  outcomesPerWrite: number;
  /** Lease new deliveries in the publish statement, as a process running a scheduler does (default), instead of claiming them after. */
  lease?: boolean;
  /** Reads a growing counter (the WAL position) to split among the phases; none by default. */
  meter?: () => Promise<number>;
}

/** The phases of the cycle. */
export type Phase = "publish" | "take" | "outcomes";

/** Milliseconds spent in each phase, and the meter's growth in each. */
export interface CycleTiming {
  ms: Record<Phase, number>;
  metered: Record<Phase, number>;
}

const BODY = JSON.stringify({ type: "invoice.paid", data: { id: "in_0123456789", amount: 4200, currency: "eur", note: "x".repeat(180) } });

/** A scheduler's room with nothing in flight and no limits in the way (also used by bench/explain.ts). */
export const ROOM = {
  workerId: "db-cost",
  leaseMarginMs: 30_000,
  defaultTimeoutMs: 15_000,
  exclude: [],
  laneFree: new Map<string, number>(),
  excludeTenants: [],
  tenants: new Map(),
  newTenant: { free: 1_000, newEndpointFree: 1_000 },
  defaultMaxInFlight: 1_000,
  workers: 1,
  circuitFailureThreshold: 5,
};

/** Health rules of the cycle's outcome writes (also used by bench/explain.ts). */
export const RULES = {
  circuitFailureThreshold: 5,
  circuitCooldownMs: 30_000,
  circuitMaxCooldownMs: 600_000,
  disableAfterMs: 5 * 86_400_000,
};

/** A successful attempt of `delivery`, as the scheduler hands it to the outcome writer (also used by bench/explain.ts). */
export function succeeded(delivery: { id: string; endpointId: string; attemptNumber: number; leaseUntil: Date }): AttemptOutcome {
  return {
    attemptId: newId("attempt"),
    deliveryId: delivery.id,
    endpointId: delivery.endpointId,
    attemptNumber: delivery.attemptNumber,
    startedAt: new Date(),
    durationMs: 1,
    responseStatus: 200,
    errorClass: "",
    error: "",
    responseBody: "ok",
    responseHeaders: { "content-type": "text/plain" },
    status: DeliveryState.Succeeded,
    nextAttemptAt: null,
    success: true,
    gone: false,
    leaseUntil: delivery.leaseUntil,
  };
}

/** Runs `options.events` events through publish, take and outcome. */
export async function runDeliveryCycle(store: Store, options: CycleOptions): Promise<CycleTiming> {
  const timing: CycleTiming = { ms: { publish: 0, take: 0, outcomes: 0 }, metered: { publish: 0, take: 0, outcomes: 0 } };
  const meter = options.meter;
  /** Runs `fn` as part of `phase`. */
  async function phase<T>(name: Phase, fn: () => Promise<T>): Promise<T> {
    const m = meter ? await meter() : 0;
    const t = performance.now();
    const result = await fn();
    timing.ms[name] += performance.now() - t;
    if (meter) timing.metered[name] += (await meter()) - m;
    return result;
  }
  const pending: AttemptOutcome[] = [];
  const flush = () =>
    phase("outcomes", () =>
      recordOutcomes(store.sql, "db-cost", pending.splice(0), RULES),
    );
  for (let done = 0; done < options.events; done += options.batch) {
    const n = Math.min(options.batch, options.events - done);
    const inserted = await phase("publish", () => insertEvents(
      store.sql,
      Array.from({ length: n }, () => ({
        id: newId("event"),
        tenantId: "t",
        eventType: "invoice.paid",
        channels: [],
        idempotencyKey: null,
        body: BODY,
        data: BODY,
      })),
      86_400_000,
      options.lease === false ? undefined : { ...ROOM, limit: 1_000 },
    ));
    const ids = inserted.events.flatMap((e) => e.deliveryIds);
    const claimed =
      ids.length === 0 ? [] : await phase("take", () => claimDue(store.sql, { ...ROOM, limit: ids.length, lookahead: ids.length, ids }));
    if (claimed.length !== ids.length) throw new Error(`took ${claimed.length} of ${ids.length} new deliveries`);
    for (const d of [...inserted.leased, ...claimed]) pending.push(succeeded(d));
    if (pending.length >= options.outcomesPerWrite) await flush();
  }
  if (pending.length > 0) await flush();
  return timing;
}

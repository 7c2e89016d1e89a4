/**
 * Retrying background writes: transient errors with a doubling backoff,
 * permanent ones not at all, and no retry once the caller's signal aborts.
 */
import { describe, expect, it } from "vitest";
import { RETRY_MAX_MS, retryDelayMs, retryTransient } from "../../src/delivery/background-retry.js";

/** An error as pg raises it for a SQLSTATE. */
const sqlState = (code: string) => Object.assign(new Error(`error ${code}`), { code });

/** A write that throws `errors` in turn, then returns "done"; counts its calls. */
function failing(...errors: unknown[]): { write: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    write: async () => {
      const err = errors[calls++];
      if (err !== undefined) throw err;
      return "done";
    },
    calls: () => calls,
  };
}

describe("retryDelayMs", () => {
  it("doubles from 100 ms up to the maximum", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(retryDelayMs)).toEqual([100, 200, 400, 800, 1_600, 3_200, RETRY_MAX_MS, RETRY_MAX_MS]);
  });
});

describe("retryTransient", () => {
  it("retries transient errors until the write succeeds, telling of each", async () => {
    const w = failing(sqlState("57P01"), Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));
    const told: Array<[number, number]> = [];
    expect(await retryTransient(w.write, { onRetry: (_err, failures, delayMs) => told.push([failures, delayMs]) })).toBe("done");
    expect(w.calls()).toBe(3);
    expect(told).toEqual([
      [1, 100],
      [2, 200],
    ]);
  });

  it("throws a permanent error at once", async () => {
    const w = failing(sqlState("22021"));
    await expect(retryTransient(w.write)).rejects.toMatchObject({ code: "22021" });
    expect(w.calls()).toBe(1);
  });

  it("throws a permanent error met on a retry", async () => {
    const w = failing(sqlState("40001"), sqlState("23505"));
    await expect(retryTransient(w.write)).rejects.toMatchObject({ code: "23505" });
    expect(w.calls()).toBe(2);
  });

  it("throws the last error, without another try, once the signal aborts", async () => {
    const w = failing(sqlState("57P01"), sqlState("57P01"), sqlState("57P01"));
    const stop = new AbortController();
    const retried = retryTransient(w.write, { signal: stop.signal, onRetry: () => stop.abort() });
    await expect(retried).rejects.toMatchObject({ code: "57P01" });
    expect(w.calls()).toBe(1);
  });

  it("tries once even with a signal already aborted, and neither retries nor says it will", async () => {
    const stop = new AbortController();
    stop.abort();
    const ok = failing();
    expect(await retryTransient(ok.write, { signal: stop.signal })).toBe("done");
    const w = failing(sqlState("57P01"));
    let told = 0;
    await expect(retryTransient(w.write, { signal: stop.signal, onRetry: () => told++ })).rejects.toMatchObject({ code: "57P01" });
    expect(w.calls()).toBe(1);
    // Nor does it say it will.
    expect(told).toBe(0);
  });
});

import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../../gen/grpc/health/v1/health_pb.js";
import { HealthState, registerHealth } from "../../src/api/health.js";

function setup(state = new HealthState()) {
  const transport = createRouterTransport((router) =>
    registerHealth(router, state),
  );
  return { state, client: createClient(Health, transport) };
}

/** Polls `condition` until it holds, failing after `timeoutMs`. */
async function eventually(
  condition: () => boolean,
  timeoutMs = 2000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error("condition not met in time");
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("HealthState", () => {
  it("starts with the whole server NOT_SERVING", () => {
    const state = new HealthState();
    expect(state.get("")).toBe(ServingStatus.NOT_SERVING);
    expect(state.get("hookline.v1.EventIngest")).toBeUndefined();
  });

  it("notifies listeners of actual changes only, until unsubscribed", () => {
    const state = new HealthState();
    const seen: [string, ServingStatus][] = [];
    const off = state.onChange((service, status) =>
      seen.push([service, status]),
    );
    expect(state.listenerCount).toBe(1);
    state.set("", ServingStatus.SERVING);
    state.set("", ServingStatus.SERVING);
    state.set("a", ServingStatus.SERVING);
    state.setAll(ServingStatus.NOT_SERVING);
    expect(state.delete("a")).toBe(true);
    expect(state.delete("a")).toBe(false);
    off();
    off();
    state.set("", ServingStatus.SERVING);
    expect(state.listenerCount).toBe(0);
    expect(seen).toEqual([
      ["", ServingStatus.SERVING],
      ["a", ServingStatus.SERVING],
      ["", ServingStatus.NOT_SERVING],
      ["a", ServingStatus.NOT_SERVING],
      ["a", ServingStatus.SERVICE_UNKNOWN],
    ]);
  });
});

describe("grpc.health.v1.Health", () => {
  it("Check reports the whole server after set", async () => {
    const { state, client } = setup();
    expect((await client.check({ service: "" })).status).toBe(
      ServingStatus.NOT_SERVING,
    );
    state.set("", ServingStatus.SERVING);
    expect((await client.check({ service: "" })).status).toBe(
      ServingStatus.SERVING,
    );
    expect((await client.check({})).status).toBe(ServingStatus.SERVING);
  });

  it("Check fails with NotFound for an unknown service", async () => {
    const { client } = setup();
    const err = await client.check({ service: "nope.v1.Nope" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.NotFound);
    expect((err as ConnectError).rawMessage).toContain("nope.v1.Nope");
  });

  it("setAll marks every service, e.g. on shutdown", async () => {
    const { state, client } = setup();
    state.set("", ServingStatus.SERVING);
    state.set("hookline.v1.EventIngest", ServingStatus.SERVING);
    state.setAll(ServingStatus.NOT_SERVING);
    expect((await client.check({ service: "" })).status).toBe(
      ServingStatus.NOT_SERVING,
    );
    expect(
      (await client.check({ service: "hookline.v1.EventIngest" })).status,
    ).toBe(ServingStatus.NOT_SERVING);
  });

  it("List returns every status", async () => {
    const { state, client } = setup();
    state.set("", ServingStatus.SERVING);
    state.set("hookline.v1.WebhookAdmin", ServingStatus.NOT_SERVING);
    const res = await client.list({});
    expect(Object.keys(res.statuses).sort()).toEqual([
      "",
      "hookline.v1.WebhookAdmin",
    ]);
    expect(res.statuses[""]?.status).toBe(ServingStatus.SERVING);
    expect(res.statuses["hookline.v1.WebhookAdmin"]?.status).toBe(
      ServingStatus.NOT_SERVING,
    );
  });

  it("Watch sends the current status, then changes, and ends on abort", async () => {
    const { state, client } = setup();
    state.set("hookline.v1.EventIngest", ServingStatus.SERVING);
    const abort = new AbortController();
    const stream = client
      .watch({ service: "hookline.v1.EventIngest" }, { signal: abort.signal })
      [Symbol.asyncIterator]();

    const first = await stream.next();
    expect(first.done).toBe(false);
    expect(first.value?.status).toBe(ServingStatus.SERVING);
    expect(state.listenerCount).toBe(1);

    state.set("hookline.v1.EventIngest", ServingStatus.SERVING); // no change
    state.set("other", ServingStatus.NOT_SERVING); // another service
    state.set("hookline.v1.EventIngest", ServingStatus.NOT_SERVING);
    const second = await stream.next();
    expect(second.value?.status).toBe(ServingStatus.NOT_SERVING);

    state.set("hookline.v1.EventIngest", ServingStatus.SERVING);
    const third = await stream.next();
    expect(third.value?.status).toBe(ServingStatus.SERVING);

    abort.abort();
    const end = await stream.next().then(
      (r) => r,
      (e: unknown) => e,
    );
    expect(ConnectError.from(end).code).toBe(Code.Canceled);
    await eventually(() => state.listenerCount === 0);
    expect(state.listenerCount).toBe(0);
  });

  it("Watch reports SERVICE_UNKNOWN for an unknown service without ending", async () => {
    const { state, client } = setup();
    const abort = new AbortController();
    const stream = client
      .watch({ service: "later.v1.Later" }, { signal: abort.signal })
      [Symbol.asyncIterator]();
    expect((await stream.next()).value?.status).toBe(
      ServingStatus.SERVICE_UNKNOWN,
    );
    state.set("later.v1.Later", ServingStatus.SERVING);
    expect((await stream.next()).value?.status).toBe(ServingStatus.SERVING);
    state.delete("later.v1.Later");
    expect((await stream.next()).value?.status).toBe(
      ServingStatus.SERVICE_UNKNOWN,
    );
    abort.abort();
    await stream.next().catch(() => undefined);
    await eventually(() => state.listenerCount === 0);
  });

  it("Watch returns when the call is aborted while it waits for a change", async () => {
    const { state, client } = setup();
    const streams = [1, 2, 3].map(() => {
      const abort = new AbortController();
      const it = client
        .watch({ service: "" }, { signal: abort.signal })
        [Symbol.asyncIterator]();
      return { abort, it };
    });
    for (const { it } of streams) {
      expect((await it.next()).value?.status).toBe(ServingStatus.NOT_SERVING);
    }
    expect(state.listenerCount).toBe(3);
    // Ask for the next message, so each handler is parked waiting for a
    // change (not at a yield, where the in-memory transport's return() would
    // end it anyway); only the handler context's signal can wake it now.
    const waiting = streams.map(({ it }) =>
      it.next().then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    for (const { abort } of streams) {
      abort.abort();
    }
    for (const err of await Promise.all(waiting)) {
      expect(ConnectError.from(err).code).toBe(Code.Canceled);
    }
    await eventually(() => state.listenerCount === 0);
    expect(state.listenerCount).toBe(0);
  });
});

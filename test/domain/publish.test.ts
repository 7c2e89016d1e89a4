/**
 * Publishing over a full group commit: the store refuses with its own
 * signal, and publishing answers it as a limit (ResourceExhausted at the API).
 */
import { describe, expect, it } from "vitest";
import { LimitExceededError } from "../../src/domain/errors.js";
import { type PublishContext, publishEvents } from "../../src/domain/publish.js";
import type { Sql } from "../../src/store/sql.js";
import { InsertQueue, InsertQueueFullError } from "../../src/store/sql/insert-queue.js";

/** A database that never answers: what was accepted stays pending. */
const stalled: Sql = { query: () => new Promise(() => {}) };

describe("publishing while the group commit is full", () => {
  it("is refused by the queue with InsertQueueFullError, past its bound of pending bytes", async () => {
    const queue = new InsertQueue(stalled, 1_000, 1_000, 1, 100);
    const event = { id: "evt_1", tenantId: "t", eventType: "e", channels: [], idempotencyKey: null, body: "x".repeat(80), data: "{}" };
    void queue.insert([event]);
    await expect(queue.insert([{ ...event, id: "evt_2" }])).rejects.toBeInstanceOf(InsertQueueFullError);
    expect(queue.pending).toBe(80);
  });

  it("is answered as a LimitExceededError, keeping the queue's message and error", async () => {
    const full = new InsertQueueFullError("too many publishes are waiting to be stored");
    const ctx: PublishContext = { insert: () => Promise.reject(full), maxPayloadBytes: 1_000 };
    const err = await publishEvents(ctx, [{ tenantId: "t", eventType: "a.b", data: {}, idempotencyKey: "", channels: [] }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LimitExceededError);
    expect((err as Error).message).toBe(full.message);
    expect((err as Error).cause).toBe(full);
  });

  it("passes other store errors on unchanged", async () => {
    const broken = new Error("connection reset");
    const ctx: PublishContext = { insert: () => Promise.reject(broken), maxPayloadBytes: 1_000 };
    await expect(publishEvents(ctx, [{ tenantId: "t", eventType: "a.b", data: {}, idempotencyKey: "", channels: [] }])).rejects.toBe(broken);
  });
});

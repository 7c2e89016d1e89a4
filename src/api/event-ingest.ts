/**
 * EventIngest: thin handlers over domain/publish.ts.
 */
import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  type EventIngest,
  type PublishRequest,
  type PublishResponse,
  PublishResponseSchema,
} from "../../gen/hookline/v1/event_ingest_pb.js";
import { actingTenant } from "../domain/auth.js";
import { LimitExceededError, UnauthenticatedError, ValidationError } from "../domain/errors.js";
import { callerOf } from "./auth.js";
import { MAX_BATCH, type PublishContext, type PublishInput, type PublishResult, publishEvents } from "../domain/publish.js";

/** Events PublishStream stores per statement. */
const STREAM_BATCH = 500;
/** Most events one PublishStream call accepts (its response lists them all). */
export const MAX_STREAM_EVENTS = 100_000;

/** The event to store; its tenant checked against the caller's (see actingTenant). */
function toInput(req: PublishRequest, ctx: HandlerContext, prefix = ""): PublishInput {
  return {
    tenantId: actingTenant(callerOf(ctx), req.tenantId, `${prefix}tenant_id`),
    eventType: req.eventType,
    data: req.payload.case === "data" ? req.payload.value : undefined,
    payloadJson: req.payload.case === "payloadJson" ? req.payload.value : undefined,
    idempotencyKey: req.idempotencyKey,
    channels: req.channels,
  };
}

function toResponse(r: PublishResult): PublishResponse {
  return create(PublishResponseSchema, { eventId: r.eventId, deliveryCount: r.deliveryCount, duplicate: r.duplicate });
}

/** The EventIngest implementation. */
export function eventIngestService(ctx: PublishContext): ServiceImpl<typeof EventIngest> {
  return {
    async publish(req, call) {
      const [result] = await publishEvents(ctx, [toInput(req, call)]);
      return toResponse(result!);
    },

    async publishBatch(req, call) {
      if (req.events.length === 0) throw new ValidationError("events", "at least one event is required");
      if (req.events.length > MAX_BATCH) {
        throw new ValidationError("events", `at most ${MAX_BATCH} events per batch, got ${req.events.length}`);
      }
      const results = await publishEvents(
        ctx,
        req.events.map((e, i) => toInput(e, call, `events[${i}].`)),
        (i) => `events[${i}].`,
      );
      return { results: results.map(toResponse) };
    },

    // Events are stored in batches as they arrive, so memory stays bounded;
    // if the stream fails midway, the batches already stored stay stored
    // (publish with idempotency keys to retry a stream safely).
    async publishStream(requests, call) {
      const results: PublishResponse[] = [];
      let pending: PublishInput[] = [];
      const flush = async () => {
        const offset = results.length;
        const stored = await publishEvents(ctx, pending, (i) => `events[${offset + i}].`);
        results.push(...stored.map(toResponse));
        pending = [];
      };
      try {
        for await (const req of requests) {
          if (results.length + pending.length >= MAX_STREAM_EVENTS) {
            throw new LimitExceededError(
              `at most ${MAX_STREAM_EVENTS} events per stream; the first ${results.length + pending.length} were accepted`,
            );
          }
          pending.push(toInput(req, call, `events[${results.length + pending.length}].`));
          if (pending.length >= STREAM_BATCH) await flush();
        }
      } catch (err) {
        // The key was revoked mid-stream (see auth.ts): what was stored stays.
        if (err instanceof UnauthenticatedError) {
          throw new UnauthenticatedError(`${err.message}; the first ${results.length} events were stored, the rest refused`);
        }
        throw err;
      }
      if (pending.length > 0) await flush();
      return { results };
    },
  };
}

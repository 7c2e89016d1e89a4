/**
 * Publishing: validate events, build the envelope each endpoint receives, and
 * store events and deliveries in one statement. Nothing is delivered inline.
 */
import type { InsertedEvent, NewEvent } from "../store/sql/insert-events.js";
import { InsertQueueFullError } from "../store/sql/insert-queue.js";
import type { EventTypeRegistry } from "./event-types.js";
import { LimitExceededError, ValidationError } from "./errors.js";
import { newId } from "./ids.js";
import { checkChannels, checkEventType, checkTenantId, checkText } from "./validate.js";

/** Most events in one PublishBatch. */
export const MAX_BATCH = 1000;

/**
 * Deepest nesting of objects and arrays in an event's data (the data
 * object itself is level 1), for `data` and `payload_json` alike. The
 * protobuf decoder stops at 100 nested messages, and a `Struct` spends two
 * per level, so binary `data` could not go much deeper anyway (see
 * src/api/deep-messages.ts for what is answered when it does); JSON
 * schemas recurse per level when they check a payload.
 */
export const MAX_DATA_DEPTH = 32;

/** One event as a publisher gives it. */
export interface PublishInput {
  tenantId: string;
  eventType: string;
  /** The data as a parsed JSON value (from a Struct)... */
  data?: unknown;
  /** ...or as JSON text, delivered byte for byte. */
  payloadJson?: string;
  idempotencyKey: string;
  channels: readonly string[];
}

/** What publishing needs from the process. */
export interface PublishContext {
  /**
   * Stores events with their deliveries, all or nothing (see
   * store/sql/insert-queue.ts); may refuse with InsertQueueFullError.
   */
  insert: (events: readonly NewEvent[]) => Promise<InsertedEvent[]>;
  /** Largest payload accepted, in bytes of JSON. */
  maxPayloadBytes: number;
  /** Called with the deliveries created, once committed (the local scheduler takes them at once). */
  onDeliveriesCreated?: (deliveryIds: string[]) => void;
  /** Checks payloads against their event types' schemas. */
  eventTypes?: EventTypeRegistry;
}

/** The result of publishing one event. */
export type PublishResult = Omit<InsertedEvent, "deliveryIds">;

/**
 * Validates and stores `inputs` (all or nothing) and returns one result per
 * input, in order. `fieldPrefix` names the inputs in errors, e.g. "events[3]."
 * for a batch.
 */
export async function publishEvents(
  ctx: PublishContext,
  inputs: readonly PublishInput[],
  fieldPrefix: (index: number) => string = () => "",
): Promise<PublishResult[]> {
  if (inputs.length === 0) return [];
  const now = new Date();
  const events = inputs.map((input, i) => prepareEvent(input, now, ctx.maxPayloadBytes, fieldPrefix(i)));
  await ctx.eventTypes?.check(
    events.map((e, i) => ({
      tenantId: e.tenantId,
      eventType: e.eventType,
      data: e.data,
      field: `${fieldPrefix(i)}${inputs[i]!.payloadJson !== undefined ? "payload_json" : "data"}`,
      typeField: `${fieldPrefix(i)}event_type`,
    })),
  );
  const results = await ctx.insert(events).catch((err: unknown) => {
    // The store's group commit refuses publishes past its bound: a limit, for the caller.
    throw err instanceof InsertQueueFullError ? new LimitExceededError(err.message, { cause: err }) : err;
  });
  const created = results.flatMap((r) => r.deliveryIds);
  if (created.length > 0) ctx.onDeliveriesCreated?.(created);
  return results;
}

/** Builds the stored event, with the exact envelope body that will be signed and sent. */
export function prepareEvent(input: PublishInput, now: Date, maxPayloadBytes: number, prefix = ""): NewEvent {
  const tenantId = checkTenantId(input.tenantId, `${prefix}tenant_id`);
  const eventType = checkEventType(input.eventType, `${prefix}event_type`);
  const channels = checkChannels(input.channels, `${prefix}channels`);
  checkText(input.idempotencyKey, `${prefix}idempotency_key`, 256);
  const data = payloadText(input, prefix);
  const bytes = Buffer.byteLength(data);
  if (bytes > maxPayloadBytes) {
    throw new LimitExceededError(`${prefix}payload: ${bytes} bytes is over the limit of ${maxPayloadBytes} bytes`);
  }
  const body = `{"type":${JSON.stringify(eventType)},"timestamp":${JSON.stringify(now.toISOString())},"data":${data}}`;
  return {
    id: newId("event"),
    tenantId,
    eventType,
    channels,
    idempotencyKey: input.idempotencyKey === "" ? null : input.idempotencyKey,
    body,
    data,
  };
}

/** The `data` member's JSON text: the publisher's bytes for payload_json, serialised otherwise. */
function payloadText(input: PublishInput, prefix: string): string {
  if (input.payloadJson !== undefined) {
    const field = `${prefix}payload_json`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(input.payloadJson);
    } catch (err) {
      throw new ValidationError(field, `is not valid JSON (${(err as Error).message})`);
    }
    if (!isPlainObject(parsed)) throw new ValidationError(field, "must be a JSON object");
    checkDepth(parsed, field);
    return input.payloadJson;
  }
  if (input.data !== undefined) {
    if (!isPlainObject(input.data)) throw new ValidationError(`${prefix}data`, "must be a JSON object");
    checkDepth(input.data, `${prefix}data`);
    return JSON.stringify(input.data);
  }
  throw new ValidationError(`${prefix}payload`, "set data or payload_json");
}

/** Refuses a JSON value nested deeper than {@link MAX_DATA_DEPTH}; walks without recursion. */
export function checkDepth(value: unknown, field: string): void {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (depth > MAX_DATA_DEPTH) throw new ValidationError(field, `is nested more than ${MAX_DATA_DEPTH} levels deep (objects and arrays)`);
    for (const member of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof member === "object" && member !== null) stack.push([member, depth + 1]);
    }
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

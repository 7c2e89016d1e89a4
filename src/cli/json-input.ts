/**
 * JSON given on the command line: inline text, `@file` or `-` (stdin), holding
 * one object, an array of objects, or one object per line (NDJSON). Turns it
 * into event data or whole PublishRequests.
 */
import { readFile } from "node:fs/promises";
import type { Readable } from "node:stream";
import { create, fromJson, type JsonObject } from "@bufbuild/protobuf";
import { type PublishRequest, PublishRequestSchema } from "../../gen/hookline/v1/event_ingest_pb.js";
import { UsageError } from "./errors.js";

/** The text of `arg`: the file after "@", stdin for "-", else `arg` itself; `source` names it in errors. */
export async function readJsonArg(arg: string, stdin: Readable): Promise<{ text: string; source: string }> {
  if (arg === "-") return { text: await readStream(stdin), source: "stdin" };
  if (arg.startsWith("@")) return { text: await readTextFile(arg.slice(1)), source: arg.slice(1) };
  return { text: arg, source: "<data>" };
}

/** The text of the file at `path`; a missing or unreadable file is a usage error. */
async function readTextFile(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function readStream(stream: Readable): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(Buffer.from(part as Buffer));
  return Buffer.concat(parts).toString("utf8");
}

/**
 * The one JSON object given by `arg` (inline, `@file` or `-`); an array or
 * several lines is a usage error saying it expected `what`.
 */
export async function readJsonObject(arg: string, stdin: Readable, what = "one JSON object"): Promise<JsonObject> {
  const { text, source } = await readJsonArg(arg, stdin);
  const { single, items } = splitJsonItems(text, source);
  if (!single) throw new UsageError(`${source}: expected ${what}`);
  return items[0]!.value;
}

/** One JSON object of an input, its text, and where it was ("line 3", "element 3"; "" for the whole input). */
export interface JsonItem {
  value: JsonObject;
  /** The object's JSON text: as given for a whole input or an NDJSON line, re-serialised from an array. */
  text: string;
  where: string;
}

/** Names an item for an error: "events.ndjson line 3", or just the source. */
function at(source: string, where: string): string {
  return where ? `${source} ${where}` : source;
}

/**
 * The objects of `text`: one object (`single`), an array of objects, or one
 * object per line (blank lines skipped). Anything else is a usage error
 * naming `source` and the line or element.
 */
export function splitJsonItems(text: string, source: string): { single: boolean; items: JsonItem[] } {
  const trimmed = text.trim();
  if (trimmed === "") throw new UsageError(`${source}: is empty`);
  let whole: unknown;
  try {
    whole = JSON.parse(trimmed);
  } catch (err) {
    const lines = trimmed.split("\n");
    if (lines.length === 1) throw new UsageError(`${source}: not JSON: ${(err as Error).message}`);
    return { single: false, items: ndjsonItems(lines, source) };
  }
  if (Array.isArray(whole)) {
    if (whole.length === 0) throw new UsageError(`${source}: the array is empty`);
    const items = whole.map((value: unknown, i) => {
      const where = `element ${i + 1}`;
      return { value: asObject(value, source, where), text: JSON.stringify(value), where };
    });
    return { single: false, items };
  }
  return { single: true, items: [{ value: asObject(whole, source, ""), text: trimmed, where: "" }] };
}

function ndjsonItems(lines: string[], source: string): JsonItem[] {
  const items: JsonItem[] = [];
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === "") return;
    const where = `line ${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new UsageError(`${at(source, where)}: not JSON: ${(err as Error).message}`);
    }
    items.push({ value: asObject(value, source, where), text: line, where });
  });
  return items;
}

function asObject(value: unknown, source: string, where: string): JsonObject {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new UsageError(`${at(source, where)}: expected a JSON object`);
  }
  return value as JsonObject;
}

/** The event fields a command line gives for events that leave them out. */
export interface EventDefaults {
  tenantId?: string;
  eventType?: string;
  channels?: string[];
}

/**
 * An event whose data is `item` (as given, byte for byte, as `payload_json`),
 * of the type and tenant of `defaults`.
 */
export function eventFromData(item: JsonItem, defaults: EventDefaults, idempotencyKey = ""): PublishRequest {
  return create(PublishRequestSchema, {
    tenantId: defaults.tenantId ?? "",
    eventType: defaults.eventType ?? "",
    channels: defaults.channels ?? [],
    payload: { case: "payloadJson", value: item.text },
    idempotencyKey,
  });
}

/**
 * A whole event written as a PublishRequest in protobuf JSON
 * (`{"eventType": "...", "data": {...}, "idempotencyKey": "..."}`), with the
 * tenant, type and channels of `defaults` where it has none.
 */
export function eventFromJson(item: JsonItem, defaults: EventDefaults, source: string): PublishRequest {
  let event: PublishRequest;
  try {
    event = fromJson(PublishRequestSchema, item.value);
  } catch (err) {
    throw new UsageError(`${at(source, item.where)}: ${(err as Error).message}`);
  }
  if (!event.tenantId && defaults.tenantId) event.tenantId = defaults.tenantId;
  if (!event.eventType && defaults.eventType) event.eventType = defaults.eventType;
  if (event.channels.length === 0 && defaults.channels) event.channels = defaults.channels;
  return event;
}

/** `items` in consecutive chunks of at most `size`. */
export function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Refuses NUL characters (U+0000) in the text of requests, before a handler
 * runs: PostgreSQL text cannot hold them, and a NUL in a query does worse
 * than fail (MikroORM inlines parameters, and PostgreSQL answers the cut
 * statement with "invalid message format", a protocol error that reads as
 * an outage: clients were told Unavailable and retried). Fuzzing found it
 * in ids, descriptions, page tokens and idempotency keys; one check of
 * every string of every request, at any depth, covers those and any field
 * added later. The error is InvalidArgument naming the field. The walk
 * costs about 1 µs per event of a PublishBatch of 1,000 (measured on the
 * test machine), far below storing it.
 *
 * google.protobuf.Struct values are JSON, stored escaped ("\u0000") or not
 * at all, so they are left alone; an event type's schema, stored as jsonb
 * (which refuses the escape too), is checked where it is stored.
 */
import type { DescMessage, DescService, Message } from "@bufbuild/protobuf";
import { type ReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { ValidationError } from "../domain/errors.js";
import { fromStreamError } from "./deep-messages.js";
import { shorten } from "../domain/validate.js";

/** JSON values in protobuf form: not checked (see the module comment). */
const JSON_TYPES = new Set(["google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"]);

function hasNul(value: unknown): value is string {
  return typeof value === "string" && value.includes("\u0000");
}

/** How a map key appears in a field path: as in "headers[X-Api-Key]", a NUL shown as \0, a long key cut. */
function keyText(key: unknown): string {
  return shorten(String(key), 64).replaceAll("\u0000", "\\0");
}

/** The path of the first string field of `message` that holds a NUL ("events[2].channels[0]"), if any. */
function findNul(message: ReflectMessage, prefix: string): string | undefined {
  if (JSON_TYPES.has(message.desc.typeName)) return undefined;
  for (const field of message.fields) {
    if (!message.isSet(field)) continue;
    const path = prefix + field.name;
    switch (field.fieldKind) {
      case "scalar":
        if (hasNul(message.get(field))) return path;
        break;
      case "message": {
        const found = findNul(message.get(field), `${path}.`);
        if (found) return found;
        break;
      }
      case "list":
        for (const [i, item] of message.get(field).entries()) {
          if (hasNul(item)) return `${path}[${i}]`;
          if (field.listKind === "message") {
            const found = findNul(item as ReflectMessage, `${path}[${i}].`);
            if (found) return found;
          }
        }
        break;
      case "map":
        for (const [key, value] of message.get(field)) {
          if (hasNul(key) || hasNul(value)) return `${path}[${keyText(key)}]`;
          if (field.mapKind === "message") {
            const found = findNul(value as ReflectMessage, `${path}[${keyText(key)}].`);
            if (found) return found;
          }
        }
        break;
      case "enum":
        break;
    }
  }
  return undefined;
}

/** Throws a ValidationError naming the first field of `message` that holds a NUL; `prefix` starts the field's path. */
export function checkNoNul(desc: DescMessage, message: Message, prefix = ""): void {
  const path = findNul(reflect(desc, message), prefix);
  if (path !== undefined) throw new ValidationError(path, "must not contain NUL (U+0000) characters");
}

async function* checkedStream<T extends Message>(desc: DescMessage, requests: AsyncIterable<T>): AsyncIterable<T> {
  let i = 0;
  try {
    for await (const request of requests) {
      // Client streams name their messages as PublishStream's errors do: "events[3].".
      checkNoNul(desc, request, `events[${i++}].`);
      yield request;
    }
  } catch (err) {
    // A message the decoder could not read (nested too deeply): see deep-messages.ts.
    throw fromStreamError(err, desc, `events[${i}].`);
  }
}

type Method = (request: unknown, context: HandlerContext) => unknown;

/** `impl` with every request checked by {@link checkNoNul} before its method runs. */
export function refusingNul<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceImpl<S> {
  const methods = impl as unknown as Record<string, Method>;
  const checked: Record<string, Method> = {};
  for (const method of service.methods) {
    const call = methods[method.localName]!.bind(impl);
    switch (method.methodKind) {
      case "unary":
        checked[method.localName] = async (request, context) => {
          checkNoNul(method.input, request as Message);
          return await call(request, context);
        };
        break;
      case "server_streaming":
        checked[method.localName] = async function* (request, context) {
          checkNoNul(method.input, request as Message);
          yield* call(request, context) as AsyncIterable<unknown>;
        };
        break;
      case "client_streaming":
      case "bidi_streaming":
        checked[method.localName] = (requests, context) => call(checkedStream(method.input, requests as AsyncIterable<Message>), context);
        break;
    }
  }
  return checked as unknown as ServiceImpl<S>;
}

/**
 * Binary requests nested too deeply to decode are INVALID_ARGUMENT naming
 * the field, not INTERNAL.
 *
 * The protobuf decoder (protobuf-es) stops at 100 nested messages and
 * connect-es answers that, like any binary decoding failure, with
 * Internal ("parse binary: ... maximum recursion depth of 100 reached"),
 * before any interceptor or handler runs. A `google.protobuf.Struct`
 * spends two messages per level of its JSON, so `data` nested some 50
 * levels (10,000 in the attack) was an internal error. Only JSON values
 * (`Struct`, `Value`, `ListValue`) nest without end in Hookline's API,
 * and unknown fields can hold nested groups.
 *
 * So, for the unary RPCs whose request can nest that deep, a binary
 * request body (gRPC, gRPC-Web, Connect) is read first and its wire format
 * walked (lengths only: nothing is decoded but map keys) for a JSON value
 * nested more than {@link MAX_DATA_DEPTH} levels, the limit the domain
 * puts on event data. If one is found, the request goes on with an empty
 * message in its place, and the handler (see {@link refusingDeepMessages})
 * throws the ValidationError naming the field, which every protocol then
 * answers as INVALID_ARGUMENT. Others go on unchanged. The walk costs
 * about a tenth of decoding the message or less (see walkJson). Client streams (PublishStream) decode
 * their messages while the handler reads them, so there the decoding
 * error itself is turned into a ValidationError ({@link fromStreamError}).
 * JSON requests already answer INVALID_ARGUMENT for nesting the decoder
 * refuses, and below that the domain's own limit names the field.
 */
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import type { DescField, DescMessage, DescService } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { type ConnectRouter, ConnectError, Code, createContextKey, createContextValues, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import { ValidationError } from "../domain/errors.js";
import { MAX_DATA_DEPTH } from "../domain/publish.js";

const STRUCT = "google.protobuf.Struct";
const VALUE = "google.protobuf.Value";
const LIST_VALUE = "google.protobuf.ListValue";
const JSON_TYPES = new Set([STRUCT, VALUE, LIST_VALUE]);

/** Set on a request found too deep, for the handler to throw. */
const tooDeepKey = createContextKey<ValidationError | undefined>(undefined);

/** A request found too deep: the field and the error. */
class TooDeep extends Error {
  constructor(readonly field: string) {
    super(field);
  }
}

function tooDeepError(field: string): ValidationError {
  return new ValidationError(field, `is nested more than ${MAX_DATA_DEPTH} levels deep (objects and arrays)`);
}

/** Whether messages of `desc` can hold a JSON value (or nest without end). */
function canNest(desc: DescMessage, seen = new Set<string>()): boolean {
  if (JSON_TYPES.has(desc.typeName)) return true;
  if (seen.has(desc.typeName)) return true;
  seen.add(desc.typeName);
  return desc.fields.some((f) => {
    const sub = messageOf(f);
    return sub !== undefined && canNest(sub, seen);
  });
}

/** The message type a field holds (itself, in a list or as map values), if any. */
function messageOf(field: DescField): DescMessage | undefined {
  if (field.fieldKind === "message") return field.message;
  if (field.fieldKind === "list" && field.listKind === "message") return field.message;
  if (field.fieldKind === "map" && field.mapKind === "message") return field.message;
  return undefined;
}

/** Skips a field that is not walked; groups (of unknown fields) nested deeper than MAX_DATA_DEPTH are TooDeep at `field`. */
function skip(reader: BinaryReader, wireType: WireType, no: number, field: string): void {
  try {
    reader.skip(wireType, no, MAX_DATA_DEPTH);
  } catch (err) {
    if (/recursion depth/.test((err as Error).message)) throw new TooDeep(field);
    throw err;
  }
}

/**
 * Throws {@link TooDeep} naming the first field of `bytes` (a message of
 * `desc`) that holds a JSON value nested more than MAX_DATA_DEPTH levels;
 * `prefix` starts its path. Malformed bytes end the walk quietly: decoding
 * reports them.
 */
function walkMessage(desc: DescMessage, bytes: Uint8Array, prefix: string, level: number): void {
  if (level > 2 * MAX_DATA_DEPTH) throw new TooDeep(prefix.replace(/\.$/, "") || "request");
  const reader = new BinaryReader(bytes);
  const counts = new Map<number, number>();
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    const field = desc.fields.find((f) => f.number === no);
    const sub = field ? messageOf(field) : undefined;
    if (!field || !sub || wireType !== WireType.LengthDelimited) {
      // Unknown fields may be groups nested without end.
      skip(reader, wireType, no, prefix.replace(/\.$/, "") || "request");
      continue;
    }
    const value = reader.bytes();
    let path = prefix + field.name;
    if (field.fieldKind === "list") {
      const i = counts.get(no) ?? 0;
      counts.set(no, i + 1);
      path += `[${i}]`;
    }
    let content = value;
    if (field.fieldKind === "map") {
      const entry = readMapEntry(value);
      path += `[${entry.key}]`;
      content = entry.value;
    }
    if (JSON_TYPES.has(sub.typeName)) {
      const kind = sub.typeName === STRUCT ? J_STRUCT : sub.typeName === LIST_VALUE ? J_LIST : J_VALUE;
      walkJson(kind, content, 0, content.byteLength, 0, path);
    }
    else walkMessage(sub, content, `${path}.`, level + 1);
  }
}

/** A map entry's key (as text, for the path) and the bytes of its value. */
function readMapEntry(bytes: Uint8Array): { key: string; value: Uint8Array } {
  const reader = new BinaryReader(bytes);
  let key = "";
  let value: Uint8Array = new Uint8Array(0);
  while (reader.pos < reader.len) {
    const [no, wireType] = reader.tag();
    if (no === 1 && wireType === WireType.LengthDelimited) key = reader.string();
    else if (no === 1 && wireType === WireType.Varint) key = String(reader.int64());
    else if (no === 2 && wireType === WireType.LengthDelimited) value = reader.bytes();
    else reader.skip(wireType, no);
  }
  return { key, value };
}

/** What walkJson walks: JSON messages, and a Struct's map entries. */
const J_STRUCT = 0;
const J_VALUE = 1;
const J_LIST = 2;
const J_ENTRY = 3;

/** Bytes that are not a well-formed message: the walk stops, and decoding reports them. */
class Malformed extends Error {}

/**
 * Walks the bytes `buf[start, end)` of a JSON message of kind `kind`
 * (J_STRUCT...) at JSON nesting `depth` (a Struct or ListValue is one
 * level deeper than what holds it) and throws TooDeep naming `field` past
 * MAX_DATA_DEPTH. Hand-written over the buffer, without a reader,
 * subarray or closure per message: this runs on every binary request that
 * can hold data. Measured on the busy 2-core test machine against
 * decoding the same PublishRequest: 13-16 µs against 112-116 µs for 600
 * bytes, 2.2 ms against 77 ms for 290 KB (with a BinaryReader per
 * message, and a closure for varints, it took a third to a half).
 */
function walkJson(kind: number, buf: Uint8Array, start: number, end: number, depth: number, field: string): void {
  const here = kind === J_STRUCT || kind === J_LIST ? depth + 1 : depth;
  if (here > MAX_DATA_DEPTH) throw new TooDeep(field);
  let pos = start;
  let groups = 0;
  while (pos < end) {
    pos = varint(buf, pos, end);
    const tag = varintValue;
    const no = Math.floor(tag / 8);
    switch (tag % 8) {
      case 0:
        pos = varint(buf, pos, end);
        break;
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      case 2: {
        pos = varint(buf, pos, end);
        const at = pos;
        pos += varintValue;
        if (pos > end) throw new Malformed();
        if (groups > 0) break;
        let inner = -1;
        if (kind === J_STRUCT && no === 1) inner = J_ENTRY;
        else if (kind === J_ENTRY && no === 2) inner = J_VALUE;
        else if (kind === J_LIST && no === 1) inner = J_VALUE;
        else if (kind === J_VALUE && no === 5) inner = J_STRUCT;
        else if (kind === J_VALUE && no === 6) inner = J_LIST;
        if (inner >= 0) walkJson(inner, buf, at, pos, here, field);
        break;
      }
      // Groups (unknown fields): the decoder skips them recursively, so nested ones count as depth.
      case 3:
        if (++groups > MAX_DATA_DEPTH) throw new TooDeep(field);
        break;
      case 4:
        if (--groups < 0) throw new Malformed();
        break;
      default:
        throw new Malformed();
    }
  }
  if (pos > end || groups !== 0) throw new Malformed();
}

/** The value {@link varint} read last (a module variable: no allocation per read). */
let varintValue = 0;

/** Reads a varint of `buf` at `pos` (before `end`) into varintValue; returns the position after it. */
function varint(buf: Uint8Array, pos: number, end: number): number {
  let value = 0;
  for (let shift = 0; shift < 35; shift += 7) {
    if (pos >= end) throw new Malformed();
    const b = buf[pos++]!;
    value += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) {
      varintValue = value;
      return pos;
    }
  }
  throw new Malformed();
}

/** The field of a message of `desc` in `bytes` nested too deeply, if any; see the module comment. */
export function findTooDeep(desc: DescMessage, bytes: Uint8Array): string | undefined {
  try {
    walkMessage(desc, bytes, "", 0);
  } catch (err) {
    if (err instanceof TooDeep) return err.field;
    // Malformed: decoding will say so.
  }
  return undefined;
}

/** How a binary request body is framed, by its content type; undefined for JSON and others. */
function framing(contentType: string): "envelopes" | "raw" | undefined {
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  if (type === "application/grpc" || type === "application/grpc+proto") return "envelopes";
  if (type === "application/grpc-web" || type === "application/grpc-web+proto") return "envelopes";
  if (type === "application/proto") return "raw";
  return undefined;
}

function decompress(bytes: Uint8Array, encoding: string | null, maxBytes: number): Uint8Array | undefined {
  try {
    if (encoding === "gzip") return gunzipSync(bytes, { maxOutputLength: maxBytes });
    if (encoding === "br") return brotliDecompressSync(bytes, { maxOutputLength: maxBytes });
  } catch {
    // Decoding will report it.
  }
  return undefined;
}

/** The messages of a request body (decompressed); those that cannot be read are left out. */
function messagesOf(body: Uint8Array, kind: "envelopes" | "raw", req: UniversalServerRequest, maxBytes: number): Uint8Array[] {
  if (kind === "raw") {
    const encoding = req.header.get("content-encoding");
    if (encoding === null || encoding === "identity") return [body];
    const plain = decompress(body, encoding, maxBytes);
    return plain ? [plain] : [];
  }
  const out: Uint8Array[] = [];
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let at = 0; at + 5 <= body.byteLength; ) {
    const flags = body[at]!;
    const length = view.getUint32(at + 1);
    const data = body.subarray(at + 5, at + 5 + length);
    at += 5 + length;
    if ((flags & 0x80) !== 0) continue;
    if ((flags & 0x01) === 0) out.push(data);
    else {
      const plain = decompress(data, req.header.get("grpc-encoding"), maxBytes);
      if (plain) out.push(plain);
    }
  }
  return out;
}

async function* replay(chunks: Uint8Array[], rest: AsyncIterator<Uint8Array> | undefined): AsyncIterable<Uint8Array> {
  yield* chunks;
  if (!rest) return;
  for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
}

function isByteStream(body: unknown): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

/**
 * Wraps the router's handlers of unary methods whose requests can nest
 * without end, so binary requests are walked first (see the module
 * comment). `readMaxBytes` is the request size limit: a larger body is
 * handed on unread beyond it, for the handler to refuse.
 */
export function scanningDeepMessages(router: ConnectRouter, readMaxBytes: number): void {
  router.handlers.forEach((handler, i) => {
    if (handler.method.methodKind !== "unary" || !canNest(handler.method.input)) return;
    router.handlers[i] = Object.assign(async (req: UniversalServerRequest) => {
      const kind = framing(req.header.get("content-type") ?? "");
      if (kind === undefined || !isByteStream(req.body)) return handler(req);
      const chunks: Uint8Array[] = [];
      let size = 0;
      const it = req.body[Symbol.asyncIterator]();
      for (let next = await it.next(); !next.done; next = await it.next()) {
        chunks.push(next.value);
        size += next.value.byteLength;
        // Envelopes add 5 bytes per message; beyond that, the handler refuses the size.
        if (size > readMaxBytes + 64) return handler({ ...req, body: replay(chunks, it) });
      }
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const field = messagesOf(body, kind, req, readMaxBytes)
        .map((m) => findTooDeep(handler.method.input, m))
        .find((f) => f !== undefined);
      if (field === undefined) return handler({ ...req, body: replay([body], undefined) });
      const values = req.contextValues ?? createContextValues();
      values.set(tooDeepKey, tooDeepError(field));
      // An empty message in place of the request, uncompressed.
      const empty = kind === "raw" ? new Uint8Array(0) : new Uint8Array(5);
      const header = new Headers(req.header);
      header.delete("content-encoding");
      if (header.has("content-length")) header.set("content-length", String(empty.byteLength));
      return handler({ ...req, header, contextValues: values, body: replay([empty], undefined) });
    }, handler) as UniversalHandler;
  });
}

function throwIfTooDeep(ctx: HandlerContext): void {
  const err = ctx.values.get(tooDeepKey);
  if (err) throw err;
}

type Method = (request: unknown, context: HandlerContext) => unknown;

/** `impl` with each unary method first throwing the error {@link scanningDeepMessages} found, if any. */
export function refusingDeepMessages<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceImpl<S> {
  const methods = impl as unknown as Record<string, Method>;
  const checked: Record<string, Method> = { ...methods };
  for (const method of service.methods) {
    if (method.methodKind !== "unary" || !canNest(method.input)) continue;
    const call = methods[method.localName]!.bind(impl);
    checked[method.localName] = async (request, context) => {
      throwIfTooDeep(context);
      return await call(request, context);
    };
  }
  return checked as unknown as ServiceImpl<S>;
}

/**
 * The error to throw for a failure to decode message `index` of a client
 * stream of `desc` messages: a ValidationError naming its field when the
 * decoder ran out of nesting depth (only JSON values nest that deep; the
 * field is named when the message has one field that can), otherwise the
 * error unchanged.
 */
export function fromStreamError(err: unknown, desc: DescMessage, prefix: string): unknown {
  if (!(err instanceof ConnectError) || err.code !== Code.Internal) return err;
  if (!/^parse binary: .*(maximum recursion depth|Maximum call stack size exceeded)/.test(err.rawMessage)) return err;
  const nesting = desc.fields.filter((f) => {
    const sub = messageOf(f);
    return sub !== undefined && canNest(sub);
  });
  return tooDeepError(nesting.length === 1 ? `${prefix}${nesting[0]!.name}` : prefix.replace(/\.$/, "") || "request");
}

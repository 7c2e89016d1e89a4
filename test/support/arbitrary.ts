/**
 * fast-check arbitraries of protobuf messages, derived from their
 * descriptors, for fuzzing the API with request messages it has never seen:
 * strings with control characters, lone surrogates and huge lengths,
 * integers at their boundaries, unknown enum numbers, long lists and maps,
 * oneofs in every case, and google.protobuf.Duration / Timestamp /
 * FieldMask values outside their documented ranges.
 *
 * Random values alone rarely get past a request's first check, so each
 * field mixes three kinds of value: the zero value (the field unset),
 * "plausible" values from a {@link Hint} (existing ids, valid names), and
 * "wild" ones. A message is drawn at one of three levels of wildness, so
 * some messages are entirely plausible and reach the database.
 */
import { create, type DescField, type DescMessage, type MessageShape, ScalarType } from "@bufbuild/protobuf";
import fc from "fast-check";

/**
 * Plausible values for one field, or undefined to use generic ones. Called
 * once per field when the arbitrary is built; `part` tells whether the
 * value is for a map's key, or else for the field's value (a list element,
 * a map value).
 */
export type Hint = (field: DescField, part: "key" | "value") => fc.Arbitrary<unknown> | undefined;

/** Options of {@link messageArbitrary}. */
export interface MessageArbitraryOptions {
  /** Plausible values by field; see {@link Hint}. */
  hint?: Hint;
  /** How deep nested messages go before they are left unset (default 4). */
  maxDepth?: number;
}

/** How wild a drawn message is: 0 only plausible values, 1 some wild ones, 2 mostly wild. */
type Wildness = 0 | 1 | 2;

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const UINT32_MAX = 2 ** 32 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
/** The Timestamp range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z. */
const TIMESTAMP_MIN_S = -62_135_596_800n;
const TIMESTAMP_MAX_S = 253_402_300_799n;
/** The Duration range: about ±10,000 years. */
const DURATION_MAX_S = 315_576_000_000n;

/** Characters that break naive text handling: NUL, CR/LF, other controls, separators, BOM, lone surrogates. */
const NASTY_CHARS = [
  "\u0000",
  "\r",
  "\n",
  "\t",
  "\u0007",
  "\u001b",
  "\u007f",
  "\u0085",
  "\u00a0",
  "\u2028",
  "\u2029",
  "\ufeff",
  "\ufffd",
  "\ud800",
  "\udfff",
  "\u{1f4a9}",
  "%",
  "'",
  '"',
  "\\",
  "*",
  ".",
  "/",
  ":",
];

/** Strings meant to break things: empty, control characters, any code point, and (unless `huge` is false) very long. */
export function wildString(huge = true): fc.Arbitrary<string> {
  const kinds: fc.Arbitrary<string>[] = [
    fc.constant(""),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: "binary", maxLength: 40 }),
    fc.string({ unit: "grapheme", maxLength: 20 }),
    fc.string({ unit: fc.constantFrom(...NASTY_CHARS), minLength: 1, maxLength: 12 }),
    fc.tuple(fc.string({ maxLength: 8 }), fc.constantFrom(...NASTY_CHARS), fc.string({ maxLength: 8 })).map((p) => p.join("")),
  ];
  if (huge) {
    // Just over the limits of the API's fields (128, 256, 1024, 2048, 4096)
    // and far over them.
    kinds.push(
      fc
        .tuple(fc.constantFrom(129, 257, 1025, 2049, 4097, 70_000), fc.constantFrom("a", "é", "\u{1f4a9}", "\u0000"))
        .map(([n, c]) => c.repeat(n)),
    );
  }
  return fc.oneof(...kinds);
}

function wildInt32(): fc.Arbitrary<number> {
  return fc.oneof(fc.constantFrom(0, 1, -1, INT32_MIN, INT32_MAX, 1000, 1001, 300, 301), fc.integer({ min: INT32_MIN, max: INT32_MAX }));
}

function wildUint32(): fc.Arbitrary<number> {
  return fc.oneof(fc.constantFrom(0, 1, UINT32_MAX), fc.integer({ min: 0, max: UINT32_MAX }));
}

function wildInt64(): fc.Arbitrary<bigint> {
  return fc.oneof(fc.constantFrom(0n, 1n, -1n, INT64_MIN, INT64_MAX), fc.bigInt({ min: INT64_MIN, max: INT64_MAX }));
}

function wildUint64(): fc.Arbitrary<bigint> {
  return fc.oneof(fc.constantFrom(0n, 1n, UINT64_MAX), fc.bigInt({ min: 0n, max: UINT64_MAX }));
}

function wildDouble(): fc.Arbitrary<number> {
  return fc.oneof(
    fc.constantFrom(0, -0, 1, -1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MAX_VALUE, Number.MIN_VALUE),
    fc.double(),
  );
}

function scalarArbitrary(scalar: ScalarType, wild: boolean, huge: boolean): fc.Arbitrary<unknown> {
  switch (scalar) {
    case ScalarType.STRING:
      return wild ? wildString(huge) : fc.string({ maxLength: 12 });
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return wild ? wildInt32() : fc.integer({ min: 0, max: 100 });
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return wild ? wildUint32() : fc.integer({ min: 0, max: 100 });
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return wild ? wildInt64() : fc.bigInt({ min: 0n, max: 100n });
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return wild ? wildUint64() : fc.bigInt({ min: 0n, max: 100n });
    case ScalarType.DOUBLE:
      return wild ? wildDouble() : fc.double({ min: 0, max: 100, noNaN: true });
    case ScalarType.FLOAT:
      return wild ? wildDouble().map(Math.fround) : fc.float({ min: 0, max: 100, noNaN: true });
    case ScalarType.BYTES:
      return wild ? fc.uint8Array({ maxLength: 64 }) : fc.uint8Array({ maxLength: 8 });
  }
}

/** google.protobuf.Timestamp: near now, anywhere in range, at its edges, and outside it. */
function timestampArbitrary(wild: boolean): fc.Arbitrary<{ seconds: bigint; nanos: number }> {
  const now = BigInt(Math.floor(Date.now() / 1000));
  const plausible = fc.record({
    seconds: fc.bigInt({ min: now - 86_400n * 30n, max: now + 3_600n }),
    nanos: fc.integer({ min: 0, max: 999_999_999 }),
  });
  if (!wild) return plausible;
  return fc.oneof(
    plausible,
    fc.record({ seconds: fc.bigInt({ min: TIMESTAMP_MIN_S, max: TIMESTAMP_MAX_S }), nanos: fc.integer({ min: 0, max: 999_999_999 }) }),
    fc.record({
      seconds: fc.constantFrom(TIMESTAMP_MIN_S, TIMESTAMP_MAX_S, TIMESTAMP_MIN_S - 1n, TIMESTAMP_MAX_S + 1n, 0n, -1n, INT64_MIN, INT64_MAX),
      nanos: fc.constantFrom(0, 999_999_999, 1_000_000_000, -1, INT32_MIN, INT32_MAX),
    }),
    fc.record({ seconds: wildInt64(), nanos: wildInt32() }),
  );
}

/** google.protobuf.Duration: small, at the range's edges, outside it, nanos of the wrong sign. */
function durationArbitrary(wild: boolean): fc.Arbitrary<{ seconds: bigint; nanos: number }> {
  const plausible = fc.record({ seconds: fc.bigInt({ min: 0n, max: 86_400n * 8n }), nanos: fc.integer({ min: 0, max: 999_999_999 }) });
  if (!wild) return plausible;
  return fc.oneof(
    plausible,
    fc.record({
      seconds: fc.constantFrom(0n, -1n, DURATION_MAX_S, -DURATION_MAX_S, DURATION_MAX_S + 1n, INT64_MIN, INT64_MAX),
      nanos: fc.constantFrom(0, -1, 1, 999_999_999, -999_999_999, 1_000_000_000, INT32_MIN, INT32_MAX),
    }),
    fc.record({ seconds: wildInt64(), nanos: wildInt32() }),
  );
}

/** A JSON object for a google.protobuf.Struct field, sometimes deeply nested or with nasty keys. */
function structArbitrary(wild: boolean): fc.Arbitrary<Record<string, unknown>> {
  const plain = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 });
  if (!wild) return plain;
  return fc.oneof(
    plain,
    fc.dictionary(wildString(), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }),
    fc.integer({ min: 50, max: 300 }).map((depth) => {
      let value: Record<string, unknown> = { leaf: true };
      for (let i = 0; i < depth; i++) value = { nested: value };
      return value;
    }),
    fc.integer({ min: 1_000, max: 5_000 }).map((n) => ({ list: Array.from({ length: n }, (_, i) => i) })),
  );
}

interface Builder {
  options: MessageArbitraryOptions;
  wildness: Wildness;
  depth: number;
  /** Whether strings may be very long (not for the elements of long lists). */
  huge: boolean;
}

/** Mixes the plausible and wild arbitraries of one value by the message's wildness. */
function mix(b: Builder, plausible: fc.Arbitrary<unknown>, wild: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  switch (b.wildness) {
    case 0:
      return plausible;
    case 1:
      return fc.oneof({ arbitrary: plausible, weight: 4 }, { arbitrary: wild, weight: 1 });
    case 2:
      return fc.oneof({ arbitrary: plausible, weight: 1 }, { arbitrary: wild, weight: 3 });
  }
}

/** One value of `field` (a list element or map value for lists and maps). */
function valueArbitrary(b: Builder, field: DescField, part: "key" | "value"): fc.Arbitrary<unknown> {
  const hinted = b.options.hint?.(field, part);
  const kind = part === "key" ? "scalar" : field.fieldKind === "list" ? field.listKind : field.fieldKind === "map" ? field.mapKind : field.fieldKind;
  let generic: { plausible: fc.Arbitrary<unknown>; wild: fc.Arbitrary<unknown> };
  if (kind === "enum") {
    const known = field.enum!.values.map((v) => v.number);
    generic = { plausible: fc.constantFrom(...known), wild: fc.oneof(fc.constantFrom(...known), wildInt32()) };
  } else if (kind === "message") {
    const message = field.message!;
    generic = { plausible: messageInit(message, { ...b, wildness: 0, depth: b.depth + 1 }), wild: messageInit(message, { ...b, depth: b.depth + 1 }) };
  } else {
    const scalar = part === "key" && field.fieldKind === "map" ? field.mapKey : field.scalar!;
    generic = { plausible: scalarArbitrary(scalar, false, b.huge), wild: scalarArbitrary(scalar, true, b.huge) };
  }
  return mix(b, hinted ?? generic.plausible, hinted ? fc.oneof(generic.plausible, generic.wild) : generic.wild);
}

/** Lists: mostly short, sometimes over the API's limits (32 channels, 64 or 256 event types). */
function listArbitrary(b: Builder, field: DescField): fc.Arbitrary<unknown[]> {
  const element = valueArbitrary(b, field, "value");
  const short = fc.array(element, { maxLength: 4 });
  if (b.wildness === 0) return short;
  // Long lists of messages would make single calls slow; of scalars they are cheap.
  const many = valueArbitrary({ ...b, huge: false }, field, "value");
  const long = field.fieldKind === "list" && field.listKind === "message" ? fc.array(many, { maxLength: 12 }) : fc.array(many, { minLength: 30, maxLength: 300 });
  return fc.oneof({ arbitrary: short, weight: 5 }, { arbitrary: long, weight: 1 });
}

function mapArbitrary(b: Builder, field: DescField): fc.Arbitrary<Record<string, unknown>> {
  const key = valueArbitrary(b, field, "key").map(String);
  const value = valueArbitrary(b, field, "value");
  const small = fc.dictionary(key, value, { maxKeys: 3 });
  if (b.wildness === 0) return small;
  return fc.oneof({ arbitrary: small, weight: 5 }, { arbitrary: fc.dictionary(key, value, { minKeys: 30, maxKeys: 40 }), weight: 1 });
}

/** The arbitrary of a singular (non-list, non-map) field's value, with well-known types handled. */
function singularArbitrary(b: Builder, field: DescField): fc.Arbitrary<unknown> {
  if (field.fieldKind === "message") {
    const hinted = b.options.hint?.(field, "value");
    const wild = b.wildness > 0;
    switch (field.message.typeName) {
      case "google.protobuf.Timestamp":
        return mix(b, hinted ?? timestampArbitrary(false), timestampArbitrary(wild));
      case "google.protobuf.Duration":
        return mix(b, hinted ?? durationArbitrary(false), durationArbitrary(wild));
      case "google.protobuf.Struct":
        return mix(b, hinted ?? structArbitrary(false), structArbitrary(wild));
      case "google.protobuf.FieldMask": {
        const paths = hinted ?? fc.array(fc.constantFrom(...field.parent.fields.map((f) => f.name)), { maxLength: 3 }).map((p) => ({ paths: p }));
        return mix(b, paths, fc.record({ paths: fc.array(wildString(), { maxLength: 4 }) }));
      }
    }
  }
  return valueArbitrary(b, field, "value");
}

/** An init object of `desc` for `create()`: each field set or left at its zero value. */
function messageInit(desc: DescMessage, b: Builder): fc.Arbitrary<Record<string, unknown>> {
  if (b.depth > (b.options.maxDepth ?? 4)) return fc.constant({});
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      model[member.localName] = fc.oneof(
        fc.constant({ case: undefined }),
        ...member.fields.map((f) => singularArbitrary(b, f).map((value) => ({ case: f.localName, value }))),
      );
    } else if (member.fieldKind === "list") {
      model[member.localName] = listArbitrary(b, member);
    } else if (member.fieldKind === "map") {
      model[member.localName] = mapArbitrary(b, member);
    } else {
      model[member.localName] = singularArbitrary(b, member);
    }
  }
  // A missing key leaves the field at its zero value (unset).
  return fc.record(model, { requiredKeys: [] });
}

/**
 * Messages of `desc` with fields drawn as described in the module comment.
 * Every message can be serialised to the binary format; some cannot be
 * serialised to JSON (a Timestamp out of range, for one).
 */
export function messageArbitrary<Desc extends DescMessage>(desc: Desc, options: MessageArbitraryOptions = {}): fc.Arbitrary<MessageShape<Desc>> {
  const levels = ([0, 1, 2] as const).map((wildness) => messageInit(desc, { options, wildness, depth: 0, huge: true }));
  return fc
    .oneof(...levels)
    .map((init) => create(desc, init as Parameters<typeof create<Desc>>[1]));
}

/**
 * Event type schemas compile so that none can stall the process: every
 * regex a schema holds runs on RE2 (linear time), patterns RE2 cannot run
 * are refused naming `schema`, and size, depth, object count, regex size
 * and compile time are bounded.
 */
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/domain/errors.js";
import {
  compilePattern,
  compileSchema,
  MAX_PATTERN_INSTRUCTIONS,
  MAX_SCHEMA_BYTES,
  MAX_SCHEMA_DEPTH,
  MAX_SCHEMA_INSTRUCTIONS,
  MAX_SCHEMA_OBJECTS,
  MAX_SCHEMA_PATTERNS,
} from "../../src/domain/json-schema.js";

/** The ValidationError `fn` throws. */
function refusal(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return err as ValidationError;
  }
  throw new Error("not refused");
}

/** Milliseconds `fn` takes. */
function timed(fn: () => unknown): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

const REDOS = "^(a+)+$";
/** 10,000 `a`s and a `!`: V8's backtracking took 7.0 s for 30 `a`s, doubling per `a`. */
const EVIL = `${"a".repeat(10_000)}!`;

describe("regular expressions run on RE2", () => {
  // Every place a schema can hold a regex, directly or through a subschema.
  // Every place a schema can hold a regex, directly or through a subschema, and whether the data passes.
  const places: [string, Record<string, unknown>, unknown, boolean][] = [
    ["pattern", { type: "string", pattern: REDOS }, EVIL, false],
    ["pattern in properties", { properties: { s: { pattern: REDOS } } }, { s: EVIL }, false],
    ["pattern in $defs through $ref", { $defs: { s: { pattern: REDOS } }, properties: { s: { $ref: "#/$defs/s" } } }, { s: EVIL }, false],
    ["patternProperties keys", { patternProperties: { [REDOS]: { type: "number" } } }, { [EVIL]: "x", aaa: 1 }, true],
    ["propertyNames", { propertyNames: { pattern: REDOS } }, { [EVIL]: 1 }, false],
    ["dependentSchemas", { dependentSchemas: { s: { properties: { s: { pattern: REDOS } } } } }, { s: EVIL }, false],
    ["items", { items: { pattern: REDOS } }, [EVIL], false],
    ["prefixItems", { prefixItems: [{ pattern: REDOS }] }, [EVIL], false],
    ["contains", { contains: { pattern: REDOS } }, [EVIL], false],
    ["additionalProperties", { additionalProperties: { pattern: REDOS } }, { s: EVIL }, false],
    ["unevaluatedProperties with patternProperties", { patternProperties: { [REDOS]: true }, unevaluatedProperties: false }, { [EVIL]: 1 }, false],
    // JSON.parse: an object literal with `then` is a thenable to the linter.
    ["if/then/else", JSON.parse(`{"if":{"pattern":"${REDOS}"},"then":true,"else":{"pattern":"${REDOS}"}}`), EVIL, false],
    ["anyOf, oneOf, allOf, not", { allOf: [{ anyOf: [{ pattern: REDOS }] }, { oneOf: [{ not: { pattern: REDOS } }] }] }, EVIL, false],
  ];
  it.each(places)("%s: ^(a+)+$ against 10,000 characters answers in well under 50 ms", (_name, schema, data, expected) => {
    const validate = compileSchema(schema);
    let valid: boolean | undefined;
    const ms = timed(() => {
      valid = validate(data) as boolean;
    });
    expect(valid).toBe(expected);
    expect(ms).toBeLessThan(50);
  });

  it("still matches what ECMAScript matches for ordinary patterns", () => {
    const validate = compileSchema({
      type: "object",
      properties: {
        id: { pattern: "^inv_[0-9A-Z]{26}$" },
        name: { pattern: "^\\p{L}[\\p{L} '-]*$" },
        code: { pattern: "\\u00e9|(?<year>\\d{4})" },
      },
    });
    expect(validate({ id: "inv_01M84CY0QWZKDSS7B285PHEW55", name: "Zoë O'Brien", code: "x2026" })).toBe(true);
    expect(validate({ id: "inv_01M84CY0QWZKDSS7B285PHEW5" })).toBe(false);
    expect(validate({ name: "1abc" })).toBe(false);
    expect(validate({ code: "é" })).toBe(true);
  });

  it("ignores format: no regex runs for it", () => {
    const validate = compileSchema({ type: "string", format: "email" });
    expect(validate(EVIL)).toBe(true);
  });

  const unrunnable: [string, string][] = [
    ["a backreference", "(a)\\1"],
    ["a backreference past 7 (re2js would read \\8 as 8)", "(a)(b)(c)(d)(e)(f)(g)(h)\\8"],
    ["a named backreference (re2js would read \\k as k)", "(?<x>a)\\k<x>"],
    ["lookahead", "a(?=b)"],
    ["negative lookahead", "a(?!b)"],
    ["lookbehind", "(?<=a)b"],
    ["negative lookbehind", "(?<!a)b"],
  ];
  it.each(unrunnable)("refuses %s, naming schema and the pattern", (_name, pattern) => {
    const places = [
      { pattern },
      { properties: { a: { pattern } } },
      { patternProperties: { [pattern]: {} } },
      { $defs: { d: { propertyNames: { pattern } } }, items: { $ref: "#/$defs/d" } },
    ];
    for (const schema of places) {
      const err = refusal(() => compileSchema(schema));
      expect(err.field).toBe("schema");
      expect(err.message).toContain(`pattern ${JSON.stringify(pattern)} cannot run on RE2`);
    }
  });

  it("refuses a pattern that is not ECMAScript, even one RE2 would take", () => {
    expect(refusal(() => compileSchema({ pattern: "(?i)abc" })).message).toMatch(/^schema: pattern "\(\?i\)abc" is not a valid regular expression/);
    expect(refusal(() => compileSchema({ pattern: "a(" })).message).toMatch(/is not a valid regular expression/);
  });
});

describe("bounds", () => {
  it(`refuses a schema over ${MAX_SCHEMA_BYTES} bytes of JSON`, () => {
    const err = refusal(() => compileSchema({ description: "x".repeat(MAX_SCHEMA_BYTES) }));
    expect(err.message).toMatch(/^schema: must be at most 65536 bytes of JSON, got \d+$/);
  });

  it(`refuses nesting deeper than ${MAX_SCHEMA_DEPTH} levels, without overflowing the stack`, () => {
    const nest = (levels: number) => {
      let s: Record<string, unknown> = {};
      for (let i = 1; i < levels; i++) s = { not: s };
      return s;
    };
    expect(() => compileSchema(nest(MAX_SCHEMA_DEPTH))).not.toThrow();
    expect(refusal(() => compileSchema(nest(MAX_SCHEMA_DEPTH + 1))).message).toBe(`schema: is nested more than ${MAX_SCHEMA_DEPTH} levels deep`);
    // Before: 1,000 nested properties overflowed Ajv's stack after 300 ms.
    expect(refusal(() => compileSchema(nest(5_000))).field).toBe("schema");
  });

  it(`refuses more than ${MAX_SCHEMA_OBJECTS} objects; before, 2,000 properties took 8.5 s to compile`, () => {
    const props = (n: number) => ({ type: "object", properties: Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, { type: "string" }])) });
    expect(() => compileSchema(props(MAX_SCHEMA_OBJECTS - 2))).not.toThrow();
    let err: ValidationError | undefined;
    const ms = timed(() => {
      err = refusal(() => compileSchema(props(2_000)));
    });
    expect(err!.message).toBe(`schema: has more than ${MAX_SCHEMA_OBJECTS} objects (subschemas and keyword values)`);
    expect(ms).toBeLessThan(100);
  });

  it(`refuses more than ${MAX_SCHEMA_PATTERNS} distinct regexes, counting a repeated one once`, () => {
    const many = (n: number) => ({ anyOf: Array.from({ length: n }, (_, i) => ({ pattern: `^a${i}$` })) });
    expect(() => compileSchema(many(MAX_SCHEMA_PATTERNS))).not.toThrow();
    expect(refusal(() => compileSchema(many(MAX_SCHEMA_PATTERNS + 1))).message).toMatch(/^schema: has more than 64 regular expressions/);
    expect(() => compileSchema({ anyOf: Array.from({ length: 100 }, () => ({ pattern: "^a$" })) })).not.toThrow();
  });

  it(`refuses a pattern over ${MAX_PATTERN_INSTRUCTIONS} RE2 instructions, and patterns over ${MAX_SCHEMA_INSTRUCTIONS} together`, () => {
    expect(compilePattern("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$").instructions).toBeLessThan(100);
    // 2,002 instructions: 12.8 s against 256 KiB of a/b on RE2, which matches in linear time but at about 12 ns per instruction per character.
    expect(refusal(() => compileSchema({ pattern: "a[ab]{999}[ab]{999}c" })).message).toMatch(
      /^schema: pattern "a\[ab\]\{999\}\[ab\]\{999\}c" is too large: \d+ RE2 instructions, at most 1000$/,
    );
    const big = (n: number) => ({ anyOf: Array.from({ length: n }, (_, i) => ({ pattern: `^${i}[ab]{900}$` })) });
    expect(() => compileSchema(big(4))).not.toThrow();
    expect(refusal(() => compileSchema(big(5))).message).toBe("schema: its regular expressions are too large together: over 4000 RE2 instructions");
  });

  it("refuses a schema that takes longer than the deadline to compile", () => {
    const schema = { type: "object", properties: { a: { type: "string", pattern: "^a+$" }, b: { type: "integer" } } };
    expect(() => compileSchema(schema)).not.toThrow();
    expect(refusal(() => compileSchema(schema, { maxCompileMs: 0 })).message).toBe("schema: takes over 0 ms to compile; make it smaller or simpler");
  });

  it("refuses what is not a schema, naming the field given", () => {
    expect(refusal(() => compileSchema({ type: "nonsense" })).message).toMatch(/^schema: is not a valid JSON Schema/);
    expect(refusal(() => compileSchema([1], { field: "x" })).message).toBe("x: must be a JSON object (or true or false)");
    expect(refusal(() => compileSchema({ $schema: "http://json-schema.org/draft-07/schema#" })).field).toBe("schema");
  });

  it("keeps schemas with the same $id apart", () => {
    const a = compileSchema({ $id: "https://example.com/s", type: "string" });
    const b = compileSchema({ $id: "https://example.com/s", type: "number" });
    expect([a("x"), b("x"), b(1)]).toEqual([true, false, true]);
  });
});

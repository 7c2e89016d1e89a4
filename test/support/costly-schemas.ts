/**
 * Schemas and payloads that are cheap to compile and costly to check, for
 * the tests of the schema pool (test/domain/schema-pool.test.ts) and of
 * tenant isolation (test/isolation/schema-cost.test.ts). Figures measured
 * on the 2-core test machine, on the event loop, before the pool.
 */

/**
 * `anyOf` over chains of `$ref`s, each level doubling the work, every
 * branch failing at its end: with 22 levels 1.4 KB of JSON, 15-34 s on any
 * object (20 levels: about 4 s).
 */
export function refChain(levels = 22): Record<string, unknown> {
  const defs: Record<string, unknown> = {};
  for (let i = 0; i < levels; i++) defs[`d${i}`] = { anyOf: [{ $ref: `#/$defs/d${i + 1}` }, { $ref: `#/$defs/d${i + 1}` }] };
  defs[`d${levels}`] = { type: "object", required: ["never"] };
  return { $defs: defs, $ref: "#/$defs/d0" };
}

/** `uniqueItems` compares objects pairwise: over 5,000 objects (a 54 KB payload), 0.6-2.2 s. */
export const UNIQUE_ITEMS = { type: "object", properties: { items: { type: "array", uniqueItems: true } } };

/** A payload of `n` distinct objects for {@link UNIQUE_ITEMS}: 1,000 take tens of ms, 5,000 over half a second. */
export function distinctObjects(n: number): { items: { a: number }[] } {
  return { items: Array.from({ length: n }, (_, i) => ({ a: i })) };
}

/**
 * A pattern of 993 RE2 instructions, within the limit of 1,000: RE2 is
 * linear, but at about 12 ns per instruction per character this takes
 * about 3 s against 256 KiB of `ab`.
 */
export const LARGE_PATTERN = { type: "object", properties: { s: { type: "string", pattern: "a[ab]{990}c" } } };

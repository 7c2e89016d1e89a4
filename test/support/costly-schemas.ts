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

/** `uniqueItems` compares objects pairwise: over 5,000 objects, a second or more (the issue measured 2.2 s for 54 KB of them). */
export const UNIQUE_ITEMS = { type: "object", properties: { items: { type: "array", uniqueItems: true } } };

/**
 * A payload of `n` distinct objects for {@link UNIQUE_ITEMS}, differing
 * only in their last member so that each comparison goes through all
 * three: in a schema thread on the test machine, 1,000 take about 45 ms,
 * 3,000 about 400 ms, 5,000 (119 KB) 1.0-1.2 s; `{"a": i}` objects took
 * half that, too near the deadline to test it.
 */
export function distinctObjects(n: number): { items: { k: number; n: number; id: number }[] } {
  return { items: Array.from({ length: n }, (_, i) => ({ k: 1, n: 0, id: i })) };
}

/**
 * A pattern of 993 RE2 instructions, within the limit of 1,000. RE2 is
 * linear, but at about 12 ns per instruction per character once its DFA
 * gives up: against {@link largePatternInput} of 250,000 characters, 2.2 s
 * in a schema thread on the test machine.
 */
export const LARGE_PATTERN = { type: "object", properties: { s: { type: "string", pattern: "a[ab]{990}c" } } };

/**
 * `length` characters for {@link LARGE_PATTERN}: random `a`s and `b`s
 * (seeded), on which RE2's DFA gives up, ending in a `c` that no match
 * reaches, so the search reads them all (without a `c` RE2 answers at once;
 * with `abab...` its DFA stays small).
 */
export function largePatternInput(length: number): { s: string } {
  let x = 1;
  const chars: string[] = [];
  for (let i = 0; i < length - 992; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    chars.push((x >>> 16) & 1 ? "a" : "b");
  }
  return { s: `${chars.join("")}b${"b".repeat(990)}c` };
}

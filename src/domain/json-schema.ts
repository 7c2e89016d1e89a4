/**
 * Compiling event type schemas (JSON Schema draft 2020-12, Ajv) so that no
 * schema can stall the process. Schemas are compiled and run in the schema
 * threads (schema-pool.ts), each check with a deadline; the rules here keep
 * what one costs small, so that the deadline is rarely met.
 *
 * Regular expressions. Ajv compiles every regex it takes from a schema
 * (`pattern`, `patternProperties` keys, wherever they sit: `$defs`,
 * `propertyNames`, `dependentSchemas`, `items`...) through its
 * `code.regExp` option, which here is RE2 (re2js): matching takes time
 * linear in the input, where V8's backtracking engine took 7.0 s for
 * `^(a+)+$` against 30 `a`s and a `!`, doubling with each further `a`.
 * A pattern RE2 cannot run (backreferences, lookahead, lookbehind) is
 * refused, as is one that is not an ECMAScript regex at all (the syntax
 * JSON Schema names; checking it compiles the pattern with V8's parser
 * only, which never runs it). Ajv itself builds native RegExps from
 * schema text only with `strict` on (the "matching properties" check) or
 * with `$data` on; both stay off. `format` runs nothing: no formats are
 * registered, so Ajv ignores the keyword (`logger: false` keeps it from
 * printing a warning per schema).
 *
 * re2js over re2-wasm (both RE2, linear): measured on the 2-core test
 * machine, re2js took 1.4 µs per test of an e-mail pattern against a
 * typical address, 0.9 µs for a semver pattern, where re2-wasm took 4.7
 * and 7.0 µs (calls into WASM cost more than they save on short strings);
 * against 200,000 characters of `^(a+)+$` input, 2.2 ms against 8.6 ms.
 * re2js is pure JavaScript (no WASM memory to free) and maintained
 * (2.10.0, November 2026; re2-wasm's last release is from 2024).
 *
 * Compile cost. Ajv's compile time grows faster than the schema: measured
 * on the test machine, 250 schema objects compiled in 34-110 ms, 500 in
 * 62-290 ms, 1,000 properties in 1.5 s (and 2,000 in 8.5 s, within the old
 * 64 KiB limit); RE2 compiles about 25 µs per program instruction
 * (`\p{L}{1000}`: 1,003 instructions, 25 ms). Hence the static bounds
 * below, plus a deadline on the compile itself: a schema that takes
 * longer is refused, so it is never stored and never recompiled by other
 * processes. Checking schemas against the draft 2020-12 meta-schema uses
 * one Ajv instance per process: compiling the meta-schema cost 90-120 ms
 * per schema before, when each schema got a fresh Ajv that compiled it.
 */
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { RE2JS } from "re2js";
import { ValidationError } from "./errors.js";
import { shorten } from "./validate.js";

/** Most bytes of a schema's JSON text. */
export const MAX_SCHEMA_BYTES = 64 * 1024;
/** Deepest nesting of objects and arrays in a schema's JSON. */
export const MAX_SCHEMA_DEPTH = 32;
/** Most JSON objects in a schema (subschemas and keyword values such as `properties`); see the module comment for the compile times behind it. */
export const MAX_SCHEMA_OBJECTS = 256;
/** Most distinct regular expressions (`pattern` values and `patternProperties` keys) in a schema. */
export const MAX_SCHEMA_PATTERNS = 64;
/**
 * Most RE2 program instructions of one pattern. Common patterns need far
 * fewer (a UUID 40, semver 65, an RFC 5322-ish e-mail 259); matching costs
 * up to about 12 ns per instruction per input character when RE2's DFA
 * gives up (`a[ab]{999}c`, 1,003 instructions: 3.1 s against 256 KiB).
 */
export const MAX_PATTERN_INSTRUCTIONS = 1_000;
/** Most RE2 program instructions of all the patterns of a schema together: about 100 ms of RE2 compiling. */
export const MAX_SCHEMA_INSTRUCTIONS = 4_000;
/**
 * A schema whose compile takes longer is refused (see the module comment).
 * The static bounds keep compiles near 200 ms at worst (measured on the
 * test machine); this catches what they miss, with room for a busy
 * machine, so a schema is not refused for the load of the moment.
 */
export const MAX_COMPILE_MS = 1_000;

/** Options of {@link compileSchema}. */
export interface CompileOptions {
  /** The compile deadline; tests make it small. */
  maxCompileMs?: number;
  /** Names the schema in errors ("schema"). */
  field?: string;
}

/** Checks `schema` against the draft 2020-12 meta-schema; one per process (see the module comment). */
let metaChecker: Ajv2020 | undefined;

/**
 * Makes the meta-schema checker and compiles the meta-schema (90-120 ms,
 * once per process, outside any schema's compile deadline), and runs RE2
 * a little: re2js matches slowly until V8 has optimised it (measured: the
 * first test of 10,000 characters 33 ms, then 9 ms, later 0.2 ms), which
 * would otherwise fall on the first publishes checked.
 */
function warmUp(): Ajv2020 {
  const checker = new Ajv2020({ strict: false, logger: false });
  checker.validateSchema({});
  const re = RE2JS.compile("^(a+)+$");
  const input = `${"a".repeat(2_000)}!`;
  for (let i = 0; i < 20; i++) re.test(input);
  return checker;
}

/** Thrown from Ajv's hooks once a compile has run past its deadline. */
class CompileAborted extends Error {}

/**
 * Compiles `schema` for validating payloads, refusing (ValidationError
 * naming `field`) one over the size bounds, one that is not a valid draft
 * 2020-12 schema, one with a pattern RE2 cannot run, and one that takes
 * longer than the deadline to compile.
 */
export function compileSchema(schema: unknown, options: CompileOptions = {}): ValidateFunction {
  const field = options.field ?? "schema";
  checkShape(schema, field);
  metaChecker ??= warmUp();
  const deadline = performance.now() + (options.maxCompileMs ?? MAX_COMPILE_MS);
  try {
    if (!metaChecker.validateSchema(schema as Record<string, unknown>)) {
      throw new ValidationError(field, `is not a valid JSON Schema: ${metaChecker.errorsText(metaChecker.errors, { dataVar: "schema" })}`);
    }
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    throw new ValidationError(field, `is not a valid JSON Schema: ${(err as Error).message}`);
  }
  // Ajv asks again for each use of a pattern; each is compiled and counted once.
  const patterns = new Map<string, Re2Pattern>();
  let instructions = 0;
  const regExp = Object.assign(
    (source: string) => {
      const known = patterns.get(source);
      if (known) return known;
      const re = compilePattern(source, field);
      patterns.set(source, re);
      if (patterns.size > MAX_SCHEMA_PATTERNS) {
        throw new ValidationError(field, `has more than ${MAX_SCHEMA_PATTERNS} regular expressions (pattern, patternProperties)`);
      }
      instructions += re.instructions;
      if (instructions > MAX_SCHEMA_INSTRUCTIONS) {
        throw new ValidationError(field, `its regular expressions are too large together: over ${MAX_SCHEMA_INSTRUCTIONS} RE2 instructions`);
      }
      if (performance.now() > deadline) throw new CompileAborted();
      return re;
    },
    // Ajv writes `code` into the generated source only in standalone mode, which Hookline does not use.
    { code: "re2js" },
  );
  // A fresh Ajv per schema: schemas with the same $id do not clash. It is
  // cheap without the meta-schema (meta: false), which metaChecker holds.
  const ajv = new Ajv2020({
    strict: false,
    logger: false,
    meta: false,
    validateSchema: false,
    code: {
      regExp,
      // Called for each function Ajv generates, before it is evaluated: a
      // point to stop a compile that has run past its deadline.
      process: (code) => {
        if (performance.now() > deadline) throw new CompileAborted();
        return code;
      },
    },
  });
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(schema as Record<string, unknown>);
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    if (err instanceof CompileAborted) throw tooSlow(field, options.maxCompileMs ?? MAX_COMPILE_MS);
    throw new ValidationError(field, `is not a valid JSON Schema: ${(err as Error).message}`);
  }
  if (performance.now() > deadline) throw tooSlow(field, options.maxCompileMs ?? MAX_COMPILE_MS);
  return validate;
}

function tooSlow(field: string, ms: number): ValidationError {
  return new ValidationError(field, `takes over ${ms} ms to compile; make it smaller or simpler`);
}

/**
 * Refuses a schema that is not an object or boolean, or is over the size,
 * depth or object count bounds. Walks without recursion first, so no
 * schema can overflow the stack here.
 */
function checkShape(schema: unknown, field: string): void {
  if (typeof schema === "boolean") return;
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
    throw new ValidationError(field, "must be a JSON object (or true or false)");
  }
  let objects = 0;
  const stack: [unknown, number][] = [[schema, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value !== "object" || value === null) continue;
    if (depth > MAX_SCHEMA_DEPTH) throw new ValidationError(field, `is nested more than ${MAX_SCHEMA_DEPTH} levels deep`);
    if (!Array.isArray(value) && ++objects > MAX_SCHEMA_OBJECTS) {
      throw new ValidationError(field, `has more than ${MAX_SCHEMA_OBJECTS} objects (subschemas and keyword values)`);
    }
    for (const member of Array.isArray(value) ? value : Object.values(value)) stack.push([member, depth + 1]);
  }
  // After the walk, which bounds the depth JSON.stringify recurses to.
  const bytes = Buffer.byteLength(JSON.stringify(schema));
  if (bytes > MAX_SCHEMA_BYTES) throw new ValidationError(field, `must be at most ${MAX_SCHEMA_BYTES} bytes of JSON, got ${bytes}`);
}

/** A pattern compiled by RE2, as Ajv uses it: `test`, and `toString` as Ajv's cache key. */
interface Re2Pattern {
  test(input: string): boolean;
  toString(): string;
  /** The size of its RE2 program. */
  instructions: number;
}

/**
 * Compiles one schema regex on RE2, refusing one that is not valid
 * ECMAScript or that RE2 cannot run, and one over
 * {@link MAX_PATTERN_INSTRUCTIONS}.
 */
export function compilePattern(source: string, field = "schema"): Re2Pattern {
  const quoted = JSON.stringify(shorten(source, 100));
  try {
    // Parsed only: V8 compiles a RegExp's matcher when it first runs, and this one never does.
    new RegExp(source, "u");
  } catch (err) {
    throw new ValidationError(field, `pattern ${quoted} is not a valid regular expression: ${(err as Error).message}`);
  }
  let re: RE2JS;
  try {
    const backreference = findBackreference(source);
    if (backreference) throw new Error(`backreference ${backreference}`);
    re = RE2JS.compile(RE2JS.translateRegExp(source));
  } catch (err) {
    throw new ValidationError(
      field,
      `pattern ${quoted} cannot run on RE2, the linear-time engine Hookline matches with (no backreferences, lookahead or lookbehind): ${(err as Error).message}`,
    );
  }
  const instructions = programSize(re);
  if (instructions > MAX_PATTERN_INSTRUCTIONS) {
    throw new ValidationError(field, `pattern ${quoted} is too large: ${instructions} RE2 instructions, at most ${MAX_PATTERN_INSTRUCTIONS}`);
  }
  const key = `/${source}/u`;
  return { test: (input) => re.test(input), toString: () => key, instructions };
}

/**
 * The first backreference of an ECMAScript pattern (`\1`, `\k<name>`),
 * if any. RE2 refuses `\1` to `\7` itself, but re2js's translation from
 * ECMAScript turns `\8`, `\9` and `\k` into plain letters, which would
 * silently match something else. In a valid unicode-mode pattern, which
 * the caller checked, every such escape is a backreference.
 */
function findBackreference(source: string): string | undefined {
  for (let i = 0; i < source.length - 1; i++) {
    if (source[i] !== "\\") continue;
    const next = source[i + 1]!;
    if (next === "k" || (next >= "1" && next <= "9")) return source.slice(i, i + 2);
    i++;
  }
  return undefined;
}

/**
 * The number of instructions of a compiled pattern's RE2 program; infinite
 * (every pattern refused, which tests notice) should re2js stop exposing it.
 */
function programSize(re: RE2JS): number {
  const prog = (re.re2() as { prog?: { numInst?: () => number } }).prog;
  return prog?.numInst?.() ?? Number.POSITIVE_INFINITY;
}

/**
 * Reading SQL out of TypeScript sources and statements, for the checks that
 * statuses and status-log kinds in SQL come from the state machine
 * (test/store/sql-states.test.ts):
 * - {@link stringLiterals}: the string and template literals of a source
 *   file, comments left out, each `${...}` of a template as `$expr`;
 * - {@link bareNumbers}: where a literal writes a status or kind as a bare
 *   number instead of interpolating it from store/sql/states.ts;
 * - {@link disagreements}: where a built statement's status and kind numbers
 *   disagree with the enums and the transition table.
 */
import { ALL_STATES, DeliveryEvent, TRANSITIONS, UpdateKind } from "../../src/domain/delivery/state.js";

/** A string or template literal of a source file. */
export interface Literal {
  /** Its text; each `${...}` of a template is {@link INTERPOLATED}. */
  text: string;
  /** The line it starts on, from 1. */
  line: number;
}

/** What a template's `${...}` reads as in its literal's text. */
export const INTERPOLATED = "$expr";

const KEYWORDS_BEFORE_REGEX = new Set(["return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do", "else", "yield", "await"]);

/**
 * The string and template literals of TypeScript `source`, in order, without
 * comments (a comment may quote old SQL) and without regular expression
 * literals. A template's `${...}` expressions are scanned too: a template
 * nested in one is a literal of its own.
 */
export function stringLiterals(source: string): Literal[] {
  const out: Literal[] = [];
  let i = 0;
  let line = 1;

  const advance = (to: number) => {
    for (; i < to; i++) if (source[i] === "\n") line++;
  };

  function quoted(quote: string): void {
    const start = line;
    let text = "";
    i++;
    while (i < source.length && source[i] !== quote) {
      if (source[i] === "\\") {
        text += source.slice(i, i + 2);
        advance(i + 2);
        continue;
      }
      text += source[i];
      advance(i + 1);
    }
    i++;
    out.push({ text, line: start });
  }

  function template(): void {
    const start = line;
    let text = "";
    i++;
    while (i < source.length && source[i] !== "`") {
      if (source[i] === "\\") {
        text += source.slice(i, i + 2);
        advance(i + 2);
      } else if (source[i] === "$" && source[i + 1] === "{") {
        i += 2;
        code(true);
        text += INTERPOLATED;
      } else {
        text += source[i];
        advance(i + 1);
      }
    }
    i++;
    out.push({ text, line: start });
  }

  function regex(): void {
    i++;
    let inClass = false;
    while (i < source.length) {
      const c = source[i];
      if (c === "\n" || (c === "/" && !inClass)) break;
      if (c === "[") inClass = true;
      if (c === "]") inClass = false;
      i += c === "\\" ? 2 : 1;
    }
    i++;
    while (i < source.length && /[a-z]/i.test(source[i]!)) i++;
  }

  /** Code up to the end, or (in a template's `${`) up to its closing brace. */
  function code(inTemplate: boolean): void {
    let depth = 0;
    // The last token: a regex literal may follow punctuation or a keyword, not a value.
    let previous = "";
    while (i < source.length) {
      const c = source[i]!;
      if (c === "/" && source[i + 1] === "/") {
        const end = source.indexOf("\n", i);
        advance(end === -1 ? source.length : end);
      } else if (c === "/" && source[i + 1] === "*") {
        advance(source.indexOf("*/", i + 2) + 2);
      } else if (c === "'" || c === '"') {
        quoted(c);
        previous = "value";
      } else if (c === "`") {
        template();
        previous = "value";
      } else if (c === "/" && (previous === "" || /^[(,=:[!&|?{};+\-*%<>~^]$/.test(previous) || KEYWORDS_BEFORE_REGEX.has(previous))) {
        regex();
        previous = "value";
      } else if (/[A-Za-z0-9_$]/.test(c)) {
        const word = /^[A-Za-z0-9_$]+/.exec(source.slice(i))![0];
        i += word.length;
        previous = word;
      } else if (/\s/.test(c)) {
        advance(i + 1);
      } else {
        if (c === "{") depth++;
        if (c === "}") {
          if (inTemplate && depth === 0) {
            i++;
            return;
          }
          depth--;
        }
        previous = c;
        i++;
      }
    }
  }

  code(false);
  return out;
}

/** One finding of a check, with the text it was found in. */
export interface Finding {
  rule: string;
  /** The matched piece of SQL. */
  match: string;
  /** Where in the text it begins (0 when it is not one piece of the text). */
  index: number;
}

/** A status or kind column, maybe qualified (`d.status`); never `response_status`. */
const COLUMN = String.raw`(?<![\w.])(?:\w+\.)?(?:status|kind)\b`;

/** Patterns of a status or kind written as a bare number. */
const BARE: readonly { rule: string; re: RegExp }[] = [
  { rule: "status/kind compared with a number", re: new RegExp(String.raw`${COLUMN}\s*(?:=|<>|!=|<=|>=|<|>)\s*-?\d`, "gi") },
  { rule: "status/kind in a list of numbers", re: new RegExp(String.raw`${COLUMN}\s+(?:NOT\s+)?IN\s*\(\s*\d`, "gi") },
  { rule: "status/kind against an array of numbers", re: new RegExp(String.raw`${COLUMN}\s*(?:=|<>)\s*(?:ANY|ALL)\s*\(\s*(?:ARRAY\s*\[|'\{)\s*\d`, "gi") },
  { rule: "status/kind between numbers", re: new RegExp(String.raw`${COLUMN}\s+(?:NOT\s+)?BETWEEN\s+\d`, "gi") },
  { rule: "a CASE mapping numbers", re: /\bWHEN\s+\d+\s+THEN\b/gi },
];

/** `sql` with its `--` comments (which may name statuses by number, harmlessly) blanked out, keeping every offset. */
function withoutSqlComments(sql: string): string {
  return sql.replace(/--[^\n]*/g, (comment) => " ".repeat(comment.length));
}

/** Splits `text` at its top-level commas (outside parentheses, brackets and quotes). */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "'") quote = !quote;
    if (quote) continue;
    if (c === "(" || c === "[") depth++;
    if (c === ")" || c === "]") depth--;
    if (c === "," && depth === 0) {
      parts.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(text.slice(start).trim());
  return parts;
}

/** The text of `text` from `from` up to the top-level keyword `end` (or the end). */
function upToKeyword(text: string, from: number, end: RegExp): string {
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === "(") depth++;
    if (c === ")") {
      if (depth === 0) return text.slice(from, i);
      depth--;
    }
    if (depth === 0 && end.test(text.slice(i, i + 12)) && /\W/.test(text[i - 1] ?? " ")) return text.slice(from, i);
  }
  return text.slice(from);
}

/** The statuses `text` sets on deliveries as constants (`UPDATE deliveries ... SET status = n`). */
function statusesSet(text: string): number[] {
  const set: number[] = [];
  for (const m of text.matchAll(/\bUPDATE\s+deliveries(?:\s+\w+)?\s+SET\s+/gi)) {
    const assignments = splitTopLevel(upToKeyword(text, m.index! + m[0].length, /^(FROM|WHERE|RETURNING)\b/i));
    for (const a of assignments) {
      const n = /^status\s*=\s*(\d+)$/i.exec(a);
      if (n) set.push(Number(n[1]));
    }
  }
  return set;
}

/** An `INSERT INTO table (columns) SELECT ...|VALUES (...)`: the value written to each column. */
export interface InsertValues {
  table: string;
  /** Where the INSERT begins in the text. */
  index: number;
  values: Map<string, string>;
}

/** The INSERTs of `text` whose values can be read: column lists with a SELECT list or one VALUES row. */
export function inserts(sql: string): InsertValues[] {
  const text = withoutSqlComments(sql);
  const found: InsertValues[] = [];
  const re = /\bINSERT\s+INTO\s+(\w+)\s*\(([^)]*)\)\s*(SELECT\b(?:\s+DISTINCT\s+ON\s*\([^)]*\))?|VALUES\s*\()/gi;
  for (const m of text.matchAll(re)) {
    const columns = m[2]!.split(",").map((c) => c.trim().toLowerCase());
    const from = m.index! + m[0].length;
    const list = m[3]!.toUpperCase().startsWith("VALUES") ? upToKeyword(text, from, /^\)/) : upToKeyword(text, from, /^FROM\b/i);
    const exprs = splitTopLevel(list);
    if (exprs.length !== columns.length) continue;
    found.push({ table: m[1]!.toLowerCase(), index: m.index!, values: new Map(columns.map((c, i) => [c, exprs[i]!])) });
  }
  return found;
}

/**
 * Where `sql` (a statement, or a literal with `$expr` for interpolations)
 * writes a status or a status-log kind as a bare number.
 */
export function bareNumbers(sql: string): Finding[] {
  const text = withoutSqlComments(sql);
  const findings: Finding[] = [];
  for (const { rule, re } of BARE) {
    for (const m of text.matchAll(re)) findings.push({ rule, match: m[0], index: m.index! });
  }
  for (const ins of inserts(text)) {
    for (const column of ["status", "kind"]) {
      const value = ins.values.get(column);
      if (value !== undefined && /^-?\d+$/.test(value)) {
        findings.push({ rule: `a number written to ${ins.table}.${column}`, match: `${column} <- ${value}`, index: ins.index });
      }
    }
  }
  return findings;
}

const STATES: readonly number[] = ALL_STATES;
const KINDS: readonly number[] = Object.values(UpdateKind);
const TRANSITION_ROWS = Object.values(TRANSITIONS);
/** Whether some transition leads to `status` and logs `kind`. */
const isTransition = (status: number, kind: number) => TRANSITION_ROWS.some((t) => t.to === status && t.log === kind);
const int = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s.trim()) ? Number(s) : undefined);

/**
 * Where built statement `sql` holds a status or kind number that
 * disagrees with the enums or the transition table:
 * - a status compared, listed or written that is no DeliveryState, a kind
 *   that is no UpdateKind;
 * - a list of statuses not written as store/sql/states.ts writes sets
 *   (ascending, so the live one is the partial indexes' predicate);
 * - a status log row (literal kind and status, or a CASE from status to
 *   kind) that no transition writes;
 * - a new delivery that does not start where `created` leads;
 * - a status set on deliveries that differs from the status logged with it.
 */
export function disagreements(sql: string): Finding[] {
  const text = withoutSqlComments(sql);
  const findings: Finding[] = [];
  const bad = (rule: string, match: string) => findings.push({ rule, match, index: 0 });
  for (const m of text.matchAll(new RegExp(String.raw`(${COLUMN})\s+(?:NOT\s+)?IN\s*\(([\d\s,]+)\)`, "gi"))) {
    const numbers = m[2]!.split(",").map((n) => Number(n.trim()));
    const column = m[1]!.toLowerCase();
    const known = column.endsWith("kind") ? KINDS : STATES;
    if (numbers.some((n) => !known.includes(n))) bad(`${column} listed with a number that is not one`, m[0]);
    const ascending = `(${[...new Set(numbers)].sort((a, b) => a - b).join(", ")})`;
    if (m[0].slice(m[0].indexOf("(")) !== ascending) bad("a list of statuses not written as sqlStates() writes it", m[0]);
  }
  for (const m of text.matchAll(new RegExp(String.raw`(${COLUMN})\s*(?:=|<>|!=)\s*(\d+)\b`, "gi"))) {
    const column = m[1]!.toLowerCase();
    const known = column.endsWith("kind") ? KINDS : STATES;
    if (!known.includes(Number(m[2]))) bad(`${column} compared with or set to a number that is not one`, m[0]);
  }
  for (const m of text.matchAll(/\bCASE\s+((?:\w+\.)?\w+)\s+((?:WHEN\s+\d+\s+THEN\s+\d+\s+)+)(?:ELSE\s+(\d+)\s+)?END/gi)) {
    if (!/(?:^|\.)status$/i.test(m[1]!)) continue;
    for (const w of m[2]!.matchAll(/WHEN\s+(\d+)\s+THEN\s+(\d+)/gi)) {
      if (!isTransition(Number(w[1]), Number(w[2]))) bad("a CASE from status to log kind that no transition makes", w[0]);
    }
    if (m[3] !== undefined) bad("a CASE from status to log kind with an ELSE: a kind made up for any other status", m[0]);
  }
  const setStatus = statusesSet(text);
  for (const ins of inserts(text)) {
    const status = int(ins.values.get("status"));
    const kind = int(ins.values.get("kind"));
    if (ins.table === "delivery_updates") {
      if (status !== undefined && kind !== undefined && !isTransition(status, kind)) {
        bad("a status log row that no transition writes", `kind ${kind}, status ${status}`);
      }
      if (status !== undefined && setStatus.length > 0 && !setStatus.includes(status)) {
        bad("a status log row whose status is not the one set", `set ${setStatus.join("/")}, logged ${status}`);
      }
    }
    if (ins.table === "deliveries" && status !== undefined && status !== TRANSITIONS[DeliveryEvent.Created].to) {
      bad("a new delivery that does not start where created leads", `status ${status}`);
    }
  }
  return findings;
}

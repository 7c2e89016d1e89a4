/**
 * Field rules shared by the domain functions. Each check throws a
 * ValidationError naming the request field, so callers see exactly what to fix.
 *
 * Every text limit counts characters as Unicode code points ({@link
 * textLength}): what a person calls a character (an emoji is one, not the
 * two UTF-16 units of `.length`), and what PostgreSQL's text functions and
 * varchar(n) count. Sizes of JSON (payloads, schemas) are in bytes.
 */
import { ValidationError } from "./errors.js";

const NAME_RE = /^[A-Za-z0-9._:-]+$/;

/** A tenant id: required, 1-128 characters of [A-Za-z0-9._:-]. */
export function checkTenantId(value: string, field = "tenant_id"): string {
  return checkName(value, field, 128);
}

/** An event type name: required, 1-256 characters of [A-Za-z0-9._:-]. */
export function checkEventType(value: string, field = "event_type"): string {
  return checkName(value, field, 256);
}

/** An event type filter: a type name, or a prefix ending in ".*" ("invoice.*"). */
export function checkEventTypeFilter(value: string, field: string): string {
  if (value.endsWith(".*") && value.length > 2) {
    checkName(value.slice(0, -2), field, 254);
    return value;
  }
  if (value.includes("*")) {
    throw new ValidationError(field, `"${value}": a wildcard is only allowed as a trailing ".*" (e.g. "invoice.*")`);
  }
  return checkName(value, field, 256);
}

/** A channel name: 1-128 characters of [A-Za-z0-9._:-]. */
export function checkChannels(values: readonly string[], field = "channels"): string[] {
  if (values.length > 32) throw new ValidationError(field, `at most 32 channels, got ${values.length}`);
  return values.map((c, i) => checkName(c, `${field}[${i}]`, 128));
}

/**
 * The length of `value` in Unicode code points (a surrogate pair counts
 * once). Cheap for long strings: at most `.length`, at least half of it.
 */
export function textLength(value: string): number {
  let n = value.length;
  for (let i = 0; i < value.length - 1; i++) {
    const c = value.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = value.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

/** Free text of at most `max` characters (code points, see the module comment); returns it. */
export function checkText(value: string, field: string, max: number): string {
  // A string of more than 2 * max UTF-16 units has more than max code points: no need to count.
  if (value.length > max && (value.length > 2 * max || textLength(value) > max)) {
    throw new ValidationError(field, `must be at most ${max} characters`);
  }
  return value;
}

function checkName(value: string, field: string, max: number): string {
  if (value === "") throw new ValidationError(field, "is required");
  // Names are ASCII (NAME_RE), so .length is their length in code points.
  if (value.length > max) throw new ValidationError(field, `must be at most ${max} characters`);
  if (!NAME_RE.test(value)) {
    throw new ValidationError(field, `"${value}" may only contain letters, digits and . _ : -`);
  }
  return value;
}

/** Checks a page size (0 means `fallback`) and returns the size to use. */
export function checkPageSize(value: number, field = "page_size", fallback = 100): number {
  if (value === 0) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > 1000) {
    throw new ValidationError(field, `must be from 1 to 1000, got ${value}`);
  }
  return value;
}

/** Opaque page tokens: base64url of the last row's id. */
export function encodePageToken(lastId: string): string {
  return Buffer.from(`1:${lastId}`).toString("base64url");
}

/** Decodes a page token; "" means the first page. */
export function decodePageToken(token: string, field = "page_token"): string | undefined {
  if (token === "") return undefined;
  const decoded = Buffer.from(token, "base64url").toString("utf8");
  // A NUL would reach the query (PostgreSQL text cannot hold it); no id has one.
  if (!decoded.startsWith("1:") || decoded.length < 3 || decoded.includes("\u0000")) {
    throw new ValidationError(field, "is not a token returned by this API");
  }
  return decoded.slice(2);
}

/** `text` cut to at most `max` UTF-16 units plus "…", never between the halves of a surrogate pair: for quoting input in messages. */
export function shorten(text: string, max: number): string {
  if (text.length <= max) return text;
  const end = /[\uD800-\uDBFF]/.test(text[max - 1]!) ? max - 1 : max;
  return `${text.slice(0, end)}…`;
}

/**
 * Parsers of command-line values: durations, times, lists, headers, enums,
 * retry policies. Each is a pure function that returns the request field's
 * value or throws commander's InvalidArgumentError, which commander reports
 * as a usage error naming the option.
 */
import { type Duration, durationFromMs, type Timestamp, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { InvalidArgumentError } from "commander";
import { ApiKeyScope } from "../../gen/hookline/v1/api_key_pb.js";
import { DeliveryStatus } from "../../gen/hookline/v1/delivery_pb.js";
import { type RetryPolicy, SignatureScheme } from "../../gen/hookline/v1/endpoint_pb.js";
import { retryPolicyToProto } from "../api/convert.js";
import { parseDuration, parseRetryExponential, parseRetrySchedule } from "../config.js";

/** Milliseconds of a duration such as "500ms", "30s", "10m", "2h" or "1d" (a bare number is milliseconds). */
export function parseDurationMs(text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** A duration flag as a protobuf Duration. */
export function parseDurationArg(text: string): Duration {
  return durationFromMs(parseDurationMs(text));
}

/** A duration in whole seconds ("30s", "2m"; a bare number is seconds here), for `timeout_seconds`. */
export function parseWholeSeconds(text: string): number {
  const ms = /^\s*\d+\s*$/.test(text) ? Number(text) * 1000 : parseDurationMs(text);
  if (ms % 1000 !== 0) throw new InvalidArgumentError("must be whole seconds (e.g. 30s, 2m)");
  return ms / 1000;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?$/;

/**
 * A point in time: RFC 3339 ("2026-11-23T14:00:00Z"; without an offset, local
 * time; a date alone is midnight UTC), "now", or a duration ago ("10m", "2h",
 * "1d") counted back from `now`.
 */
export function parseTime(text: string, now: number = Date.now()): Timestamp {
  const t = text.trim();
  if (t === "now") return timestampFromMs(now);
  if (RFC3339.test(t)) {
    const ms = Date.parse(t);
    if (!Number.isNaN(ms)) return timestampFromMs(ms);
  }
  let ago: number;
  try {
    ago = parseDuration(t);
  } catch {
    throw new InvalidArgumentError("expected an RFC 3339 time (2026-11-23T14:00:00Z), now, or a duration ago (10m, 2h, 1d)");
  }
  return timestampFromMs(now - ago);
}

/** Returns a parser of whole numbers from `min` to `max`. */
export function integerIn(min: number, max: number): (text: string) => number {
  return (text) => {
    const n = Number(text);
    if (text.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

/** A number of at least 0, decimals allowed (a rate per second). */
export function parseRate(text: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError("expected a number of at least 0");
  return n;
}

/** A comma-separated list ("invoice.*,user.created"); blanks dropped, so "" is the empty list. */
export function parseList(text: string): string[] {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** A commander collector for repeatable options: each use adds to the list. */
export function collect<T>(parse: (text: string) => T): (text: string, previous: T[] | undefined) => T[] {
  return (text, previous) => [...(previous ?? []), parse(text)];
}

/** A header written as curl writes it, "Name: value", as a [name, value] pair. */
export function parseHeader(text: string): [string, string] {
  const colon = text.indexOf(":");
  const name = colon < 0 ? "" : text.slice(0, colon).trim();
  if (name === "") throw new InvalidArgumentError('expected "Name: value"');
  return [name, text.slice(colon + 1).trim()];
}

/** "standard-webhooks" (or "standard") or "github". */
export function parseScheme(text: string): SignatureScheme {
  switch (text.trim().toLowerCase()) {
    case "standard-webhooks":
    case "standard":
      return SignatureScheme.STANDARD_WEBHOOKS;
    case "github":
      return SignatureScheme.GITHUB;
    default:
      throw new InvalidArgumentError("expected standard-webhooks or github");
  }
}

/** A parser of an enum flag by its short name or its proto name (`prefix` + short name), any case. */
function byName<T>(names: Record<string, T>, prefix: RegExp, expected: string): (text: string) => T {
  const table = new Map(Object.entries(names));
  return (text) => {
    const value = table.get(text.trim().toLowerCase().replace(prefix, ""));
    if (value === undefined) throw new InvalidArgumentError(`expected ${expected}`);
    return value;
  };
}

/** A delivery status by its short name ("failed") or its proto name ("DELIVERY_STATUS_FAILED"), any case. */
export const parseStatus = byName(
  { pending: DeliveryStatus.PENDING, retrying: DeliveryStatus.RETRYING, succeeded: DeliveryStatus.SUCCEEDED, failed: DeliveryStatus.FAILED },
  /^delivery_status_/,
  "pending, retrying, succeeded or failed",
);

/** An API key scope by its short name ("ingest", "admin") or its proto name, any case. */
export const parseScope = byName(
  { ingest: ApiKeyScope.INGEST, admin: ApiKeyScope.ADMIN },
  /^api_key_scope_/,
  "ingest (EventIngest only) or admin (EventIngest and WebhookAdmin)",
);

/** A comma-separated list of statuses ("succeeded,failed"). */
export function parseStatuses(text: string): DeliveryStatus[] {
  const statuses = parseList(text).map(parseStatus);
  if (statuses.length === 0) throw new InvalidArgumentError("expected pending, retrying, succeeded or failed");
  return statuses;
}

/** A retry schedule flag, "5s,5m,30m" or "none", as the proto RetryPolicy (the same syntax as HOOKLINE_RETRY_SCHEDULE). */
export function parseRetryScheduleArg(text: string): RetryPolicy {
  return retryPolicyToProto(configValue(() => parseRetrySchedule(text, "--retry-schedule")));
}

/** An exponential retry flag, "base,cap,max_attempts" ("2s,1h,5"), as the proto RetryPolicy (as HOOKLINE_RETRY_EXPONENTIAL). */
export function parseRetryExponentialArg(text: string): RetryPolicy {
  return retryPolicyToProto(configValue(() => parseRetryExponential(text, "--retry-exponential")));
}

function configValue<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

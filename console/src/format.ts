/** How the console writes statuses, times, durations and HTTP outcomes. */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { DeliveryStatus } from "../../gen/hookline/v1/delivery_pb.js";
import { CircuitState } from "../../gen/hookline/v1/endpoint_pb.js";

/** The statuses a delivery can be in, in the order of its life. */
export const DELIVERY_STATUSES = [
  DeliveryStatus.PENDING,
  DeliveryStatus.RETRYING,
  DeliveryStatus.SUCCEEDED,
  DeliveryStatus.FAILED,
] as const;

/** "SUCCEEDED" for DeliveryStatus.SUCCEEDED: the API's own name, as the docs use it. */
export function statusName(status: DeliveryStatus): string {
  return DeliveryStatus[status] ?? String(status);
}

/** The DeliveryStatus called `name` ("FAILED", any case), or undefined. */
export function parseStatus(name: string): DeliveryStatus | undefined {
  const status = DELIVERY_STATUSES.find((s) => statusName(s) === name.trim().toUpperCase());
  return status;
}

/** "Closed", "Open", "Half-open" for a circuit state; "" when not reported. */
export function circuitName(state: CircuitState): string {
  switch (state) {
    case CircuitState.CLOSED:
      return "Closed";
    case CircuitState.OPEN:
      return "Open";
    case CircuitState.HALF_OPEN:
      return "Half-open";
    default:
      return "";
  }
}

/** A timestamp as a Date, or undefined when unset. */
export function dateOf(ts: Timestamp | undefined): Date | undefined {
  return ts ? timestampDate(ts) : undefined;
}

/** "14:03:27" today, "Mar 4, 14:03:27" on another day; "" when unset. */
export function shortTime(date: Date | undefined, now = new Date()): string {
  if (!date) return "";
  const time = date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  if (date.toDateString() === now.toDateString()) return time;
  return `${date.toLocaleDateString(undefined, { month: "short", day: "numeric" })}, ${time}`;
}

/** The full local date and time, for tooltips and detail views; "" when unset. */
export function fullTime(date: Date | undefined): string {
  if (!date) return "";
  return date.toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
  });
}

/** "42 ms", "1.4 s", "2 min 5 s". */
export function duration(ms: number | bigint): string {
  const n = Number(ms);
  if (n < 1_000) return `${Math.round(n)} ms`;
  if (n < 60_000) return `${(n / 1_000).toFixed(n < 10_000 ? 1 : 0)} s`;
  const minutes = Math.floor(n / 60_000);
  const seconds = Math.round((n % 60_000) / 1_000);
  return seconds === 0 ? `${minutes} min` : `${minutes} min ${seconds} s`;
}

/** "in 4 s", "in 3 min", "now" for a future time; used for next attempts. */
export function untilTime(date: Date | undefined, now = Date.now()): string {
  if (!date) return "";
  const ms = date.getTime() - now;
  return ms <= 500 ? "now" : `in ${duration(ms)}`;
}

/** "97.5 %" for 0.975. */
export function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(ratio >= 0.9995 || ratio === 0 ? 0 : 1)} %`;
}

/** The HTTP status of an attempt, or "no response" when there was none. */
export function responseCode(status: number): string {
  return status === 0 ? "no response" : String(status);
}

/** A CSS class suffix for an HTTP status: "2xx", "3xx", "4xx", "5xx" or "none". */
export function responseClass(status: number): string {
  return status >= 200 && status < 600 ? `${Math.floor(status / 100)}xx` : "none";
}

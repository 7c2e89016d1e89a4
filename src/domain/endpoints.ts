/**
 * Endpoint rules: what a valid endpoint is, and creating, reading, listing
 * and deleting them.
 */
import { failPendingOfDeleted } from "../store/sql/endpoint-deleted.js";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { AddressGuard } from "../delivery/address-guard.js";
import { generateSecret, checkSecret } from "../signing/secrets.js";
import { Endpoint, type StoredRetryPolicy } from "../store/entities/index.js";
import { NotFoundError, ValidationError } from "./errors.js";
import { newId } from "./ids.js";
import {
  checkChannels,
  checkEventTypeFilter,
  checkPageSize,
  checkTenantId,
  decodePageToken,
  encodePageToken,
} from "./validate.js";

/** An endpoint as a caller describes it. */
export interface EndpointInput {
  tenantId: string;
  url: string;
  description: string;
  eventTypes: readonly string[];
  channels: readonly string[];
  headers: Readonly<Record<string, string>>;
  secret: string;
  signatureScheme: "standard-webhooks" | "github";
  retryPolicy: StoredRetryPolicy | null;
  timeoutSeconds: number;
  maxInFlight: number;
  rateLimitPerSecond: number;
  ordered: boolean;
  disabled: boolean;
}

/**
 * Headers Hookline sets itself; an endpoint cannot override them, so
 * signatures and framing stay trustworthy.
 */
export const RESERVED_HEADERS = new Set([
  "webhook-id",
  "webhook-timestamp",
  "webhook-signature",
  "x-hub-signature-256",
  "content-type",
  "content-length",
  "content-encoding",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "host",
  "user-agent",
  "te",
  "upgrade",
  "trailer",
]);

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const DAY_MS = 86_400_000;

/** Checks an endpoint URL: absolute http(s) with a host and no credentials. */
export function checkUrl(value: string, field = "url"): string {
  if (value === "") throw new ValidationError(field, "is required");
  if (value.length > 2048) throw new ValidationError(field, "must be at most 2048 characters");
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ValidationError(field, `"${value}" is not an absolute URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ValidationError(field, `scheme must be http or https, got "${url.protocol.slice(0, -1)}"`);
  }
  if (url.hostname === "") throw new ValidationError(field, "must have a host");
  if (url.username !== "" || url.password !== "") {
    throw new ValidationError(field, "must not contain credentials; use headers for authentication");
  }
  return url.toString();
}

/** Checks custom headers: valid names and values, none reserved, at most 32. */
export function checkHeaders(headers: Readonly<Record<string, string>>, field = "headers"): Record<string, string> {
  const entries = Object.entries(headers);
  if (entries.length > 32) throw new ValidationError(field, `at most 32 headers, got ${entries.length}`);
  const out: Record<string, string> = {};
  for (const [name, value] of entries) {
    const lower = name.toLowerCase();
    if (!TOKEN_RE.test(name)) throw new ValidationError(`${field}[${name}]`, "is not a valid header name");
    if (RESERVED_HEADERS.has(lower)) {
      throw new ValidationError(`${field}[${name}]`, "is set by Hookline and cannot be overridden");
    }
    if (/[\r\n\0]/.test(value)) throw new ValidationError(`${field}[${name}]`, "value must not contain CR, LF or NUL");
    if (value.length > 4096) throw new ValidationError(`${field}[${name}]`, "value must be at most 4096 characters");
    out[lower] = value;
  }
  return out;
}

/** Checks a retry policy's bounds. */
export function checkRetryPolicy(policy: StoredRetryPolicy | null, field = "retry_policy"): StoredRetryPolicy | null {
  if (policy === null) return null;
  if (policy.kind === "schedule") {
    if (policy.delaysMs.length > 50) throw new ValidationError(`${field}.schedule.delays`, "at most 50 delays");
    policy.delaysMs.forEach((d, i) => {
      if (!Number.isFinite(d) || d < 0 || d > 7 * DAY_MS) {
        throw new ValidationError(`${field}.schedule.delays[${i}]`, "must be from 0 s to 7 days");
      }
    });
    return policy;
  }
  if (!(policy.baseMs > 0 && policy.baseMs <= DAY_MS)) {
    throw new ValidationError(`${field}.exponential.base`, "must be more than 0 s and at most 1 day");
  }
  if (!(policy.capMs >= policy.baseMs && policy.capMs <= 7 * DAY_MS)) {
    throw new ValidationError(`${field}.exponential.cap`, "must be at least base and at most 7 days");
  }
  if (!Number.isInteger(policy.maxAttempts) || policy.maxAttempts < 1 || policy.maxAttempts > 100) {
    throw new ValidationError(`${field}.exponential.max_attempts`, "must be from 1 to 100");
  }
  return policy;
}

/**
 * Validates `input` and stores a new endpoint. Returns it with its secret.
 * A URL that `guard` says can never be delivered to (a blocked IP literal,
 * `localhost`) is refused here; other names are judged at delivery time.
 */
export async function createEndpoint(em: EntityManager, guard: AddressGuard, input: EndpointInput): Promise<Endpoint> {
  const endpoint = new Endpoint();
  endpoint.id = newId("endpoint");
  endpoint.tenantId = checkTenantId(input.tenantId);
  endpoint.url = checkUrl(input.url);
  const refusal = guard.neverAllowed(new URL(endpoint.url));
  if (refusal) throw new ValidationError("url", refusal);
  if (input.description.length > 1024) throw new ValidationError("description", "must be at most 1024 characters");
  endpoint.description = input.description;
  if (input.eventTypes.length > 256) throw new ValidationError("event_types", "at most 256 entries");
  endpoint.eventTypes = input.eventTypes.map((t, i) => checkEventTypeFilter(t, `event_types[${i}]`));
  endpoint.channels = checkChannels(input.channels);
  endpoint.headers = checkHeaders(input.headers);
  endpoint.secrets = [{ secret: input.secret === "" ? generateSecret() : checkSecret(input.secret, "secret"), expiresAt: null }];
  endpoint.signatureScheme = input.signatureScheme;
  endpoint.retryPolicy = checkRetryPolicy(input.retryPolicy);
  if (input.timeoutSeconds !== 0 && (!Number.isInteger(input.timeoutSeconds) || input.timeoutSeconds < 1 || input.timeoutSeconds > 300)) {
    throw new ValidationError("timeout_seconds", "must be from 1 to 300 (or 0 for the default)");
  }
  endpoint.timeoutMs = input.timeoutSeconds === 0 ? null : input.timeoutSeconds * 1000;
  if (!Number.isInteger(input.maxInFlight) || input.maxInFlight < 0 || input.maxInFlight > 1000) {
    throw new ValidationError("max_in_flight", "must be from 0 to 1000");
  }
  endpoint.maxInFlight = input.maxInFlight === 0 ? null : input.maxInFlight;
  if (!Number.isFinite(input.rateLimitPerSecond) || input.rateLimitPerSecond < 0 || input.rateLimitPerSecond > 100_000) {
    throw new ValidationError("rate_limit_per_second", "must be from 0 to 100000");
  }
  endpoint.rateLimitPerSecond = input.rateLimitPerSecond === 0 ? null : input.rateLimitPerSecond;
  endpoint.ordered = input.ordered;
  endpoint.disabled = input.disabled;
  endpoint.createdAt = new Date();
  endpoint.updatedAt = endpoint.createdAt;
  await em.persistAndFlush(endpoint);
  return endpoint;
}

/** Returns the live endpoint `id`, or throws NotFoundError. */
export async function getEndpoint(em: EntityManager, id: string): Promise<Endpoint> {
  if (id === "") throw new ValidationError("id", "is required");
  const endpoint = await em.findOne(Endpoint, { id, deletedAt: null });
  if (!endpoint) throw new NotFoundError("endpoint", id);
  return endpoint;
}

/** One page of a tenant's endpoints, oldest first. */
export async function listEndpoints(
  em: EntityManager,
  tenantId: string,
  pageSize: number,
  pageToken: string,
): Promise<{ endpoints: Endpoint[]; nextPageToken: string }> {
  checkTenantId(tenantId);
  const size = checkPageSize(pageSize);
  const after = decodePageToken(pageToken);
  const rows = await em.find(
    Endpoint,
    { tenantId, deletedAt: null, ...(after ? { id: { $gt: after } } : {}) },
    { orderBy: { id: "asc" }, limit: size + 1 },
  );
  const more = rows.length > size;
  const endpoints = more ? rows.slice(0, size) : rows;
  return { endpoints, nextPageToken: more ? encodePageToken(endpoints.at(-1)!.id) : "" };
}

/**
 * Deletes an endpoint and fails its pending deliveries (reason "endpoint
 * deleted"), in one transaction. The row stays, marked deleted, so delivery
 * history keeps its endpoint. Returns how many deliveries were failed.
 */
export async function deleteEndpoint(em: EntityManager, id: string): Promise<number> {
  return em.transactional(async (tx) => {
    const endpoint = await getEndpoint(tx, id);
    endpoint.deletedAt = new Date();
    endpoint.disabled = true;
    endpoint.disabledReason = "deleted";
    await tx.flush();
    return failPendingOfDeleted(tx, id);
  });
}

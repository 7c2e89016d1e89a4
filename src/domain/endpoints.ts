/**
 * Endpoint rules: what a valid endpoint is, and creating, reading, listing
 * and deleting them.
 */
import { type EntityManager, LockMode } from "@mikro-orm/postgresql";
import { failPendingOfDeleted, unparkEndpoint } from "../store/sql/endpoint-changes.js";
import type { SecretBox } from "../signing/secret-box.js";
import { generateSecret, checkSecret } from "../signing/secrets.js";
import { Endpoint } from "../store/entities/index.js";
import { MIN_RATE_PER_SECOND } from "./delivery/limits.js";
import type { StoredRetryPolicy } from "./delivery/retry-policy.js";
import { NotFoundError, ValidationError } from "./errors.js";
import { newId } from "./ids.js";
import {
  checkChannels,
  checkEventTypeFilter,
  checkPageSize,
  checkTenantId,
  checkText,
  decodePageToken,
  textLength,
  encodePageToken,
  shorten,
} from "./validate.js";

/**
 * Judges an endpoint's URL when it is set: why it can never be delivered
 * to, or undefined. The SSRF guard (delivery/address-guard.ts) is the one
 * the process uses; endpoint rules need no more of it than this.
 */
export interface DestinationCheck {
  neverAllowed(url: URL): string | undefined;
}

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

/**
 * Checks an endpoint URL: absolute http(s) with a host, no credentials,
 * no fragment (never sent: it would be silently dropped) and a port from
 * 1 to 65535. At most 2048 characters as given and once normalised
 * (non-ASCII characters percent-encoded or punycoded), the form that is
 * stored and sent. Returns the normalised URL.
 */
export function checkUrl(value: string, field = "url"): string {
  if (value === "") throw new ValidationError(field, "is required");
  checkText(value, field, 2048);
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
  // An empty fragment ("https://host/#") leaves url.hash empty but href ending in "#".
  if (url.hash !== "" || url.href.includes("#")) {
    throw new ValidationError(field, "must not have a fragment (#...): it is never sent to the receiver");
  }
  if (url.port === "0") throw new ValidationError(field, "port must be from 1 to 65535, got 0");
  const normalised = url.toString();
  if (normalised.length > 2048) {
    throw new ValidationError(field, `must be at most 2048 characters once normalised (non-ASCII characters encoded), got ${normalised.length}`);
  }
  return normalised;
}

/**
 * Header names that undici, the HTTP client deliveries are sent with,
 * refuses to send (lib/core/request.js, undici 7): `expect` is
 * NotSupportedError, and `transfer-encoding`, `keep-alive`, `upgrade`,
 * `connection`, `host` and `content-length` are refused or taken over by
 * it (those are in {@link RESERVED_HEADERS} too). Accepting one would fail
 * every attempt of the endpoint.
 */
export const UNSENDABLE_HEADERS = new Set(["expect"]);

/**
 * A valid HTTP field value (RFC 9110 5.5) as Hookline sends it: visible
 * ASCII, with spaces and tabs inside but not at either end (receivers
 * strip them, so the value would not arrive as given). obs-text
 * (0x80-0xFF) is refused too: undici sends each UTF-16 unit as one byte
 * (Latin-1), so "é" would arrive as a byte that UTF-8 readers do not take
 * for "é", and anything beyond U+00FF would arrive cut to its low byte.
 */
const FIELD_VALUE_RE = /^(?:[\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?)?$/;

/**
 * Checks custom headers: at most 32; names are HTTP tokens of at most 256
 * characters, neither reserved nor unsendable, and no two differ only in
 * case; values are valid field values (see {@link FIELD_VALUE_RE}) of at
 * most 4096 characters. Returns them with lower-case names.
 */
export function checkHeaders(headers: Readonly<Record<string, string>>, field = "headers"): Record<string, string> {
  const entries = Object.entries(headers);
  if (entries.length > 32) throw new ValidationError(field, `at most 32 headers, got ${entries.length}`);
  const out: Record<string, string> = {};
  const given = new Map<string, string>();
  for (const [name, value] of entries) {
    const at = `${field}[${shorten(name, 32)}]`;
    if (!TOKEN_RE.test(name)) throw new ValidationError(at, "is not a valid header name");
    // Tokens are ASCII, so .length counts characters.
    if (name.length > 256) throw new ValidationError(at, "name must be at most 256 characters");
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower)) throw new ValidationError(at, "is set by Hookline and cannot be overridden");
    if (UNSENDABLE_HEADERS.has(lower)) throw new ValidationError(at, "cannot be sent by Hookline's HTTP client");
    const other = given.get(lower);
    if (other !== undefined) {
      throw new ValidationError(at, `differs from ${other} only in case; header names are case-insensitive, give it once`);
    }
    given.set(lower, name);
    if (value.length > 4096 && (value.length > 8192 || textLength(value) > 4096)) {
      throw new ValidationError(at, "value must be at most 4096 characters");
    }
    if (/[\r\n\0]/.test(value)) throw new ValidationError(at, "value must not contain CR, LF or NUL");
    if (!FIELD_VALUE_RE.test(value)) {
      throw new ValidationError(at, "value must be visible ASCII characters, with spaces or tabs only between them");
    }
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

/** Endpoint fields a caller sets, by their proto names (UpdateEndpoint's update_mask paths). */
export const ENDPOINT_FIELDS = [
  "url",
  "description",
  "event_types",
  "channels",
  "headers",
  "signature_scheme",
  "retry_policy",
  "timeout_seconds",
  "max_in_flight",
  "rate_limit_per_second",
  "ordered",
  "disabled",
] as const;
/** One of {@link ENDPOINT_FIELDS}. */
export type EndpointField = (typeof ENDPOINT_FIELDS)[number];

/**
 * Validates the `fields` of `input` and sets them on `endpoint`; errors
 * name the field with `prefix` ("endpoint." for UpdateEndpoint).
 */
function applyFields(
  endpoint: Endpoint,
  guard: DestinationCheck,
  input: Omit<EndpointInput, "tenantId" | "secret">,
  fields: ReadonlySet<EndpointField>,
  prefix = "",
): void {
  const f = (name: string) => prefix + name;
  if (fields.has("url")) {
    endpoint.url = checkUrl(input.url, f("url"));
    const refusal = guard.neverAllowed(new URL(endpoint.url));
    if (refusal) throw new ValidationError(f("url"), refusal);
  }
  if (fields.has("description")) {
    endpoint.description = checkText(input.description, f("description"), 1024);
  }
  if (fields.has("event_types")) {
    if (input.eventTypes.length > 256) throw new ValidationError(f("event_types"), "at most 256 entries");
    endpoint.eventTypes = input.eventTypes.map((t, i) => checkEventTypeFilter(t, f(`event_types[${i}]`)));
  }
  if (fields.has("channels")) endpoint.channels = checkChannels(input.channels, f("channels"));
  if (fields.has("headers")) endpoint.headers = checkHeaders(input.headers, f("headers"));
  if (fields.has("signature_scheme")) endpoint.signatureScheme = input.signatureScheme;
  if (fields.has("retry_policy")) endpoint.retryPolicy = checkRetryPolicy(input.retryPolicy, f("retry_policy"));
  if (fields.has("timeout_seconds")) {
    const t = input.timeoutSeconds;
    if (t !== 0 && (!Number.isInteger(t) || t < 1 || t > 300)) {
      throw new ValidationError(f("timeout_seconds"), "must be from 1 to 300 (or 0 for the default)");
    }
    endpoint.timeoutMs = t === 0 ? null : t * 1000;
  }
  if (fields.has("max_in_flight")) {
    if (!Number.isInteger(input.maxInFlight) || input.maxInFlight < 0 || input.maxInFlight > 1000) {
      throw new ValidationError(f("max_in_flight"), "must be from 0 to 1000");
    }
    endpoint.maxInFlight = input.maxInFlight === 0 ? null : input.maxInFlight;
  }
  if (fields.has("rate_limit_per_second")) {
    const r = input.rateLimitPerSecond;
    // Below the least rate, the wait for a token outgrows what the scheduler
    // can time (see domain/delivery/limits.ts): one request per 1,000 s is the least.
    if (!Number.isFinite(r) || (r !== 0 && (r < MIN_RATE_PER_SECOND || r > 100_000))) {
      throw new ValidationError(f("rate_limit_per_second"), `must be 0 (no limit) or from ${MIN_RATE_PER_SECOND} to 100000`);
    }
    endpoint.rateLimitPerSecond = r === 0 ? null : r;
  }
  if (fields.has("ordered")) endpoint.ordered = input.ordered;
  if (fields.has("disabled")) endpoint.disabled = input.disabled;
}

/**
 * Validates `input` and stores a new endpoint. Returns it with its secret.
 * A URL that `guard` says can never be delivered to (a blocked IP literal,
 * `localhost`) is refused here; other names are judged at delivery time.
 */
export async function createEndpoint(em: EntityManager, guard: DestinationCheck, box: SecretBox, input: EndpointInput): Promise<Endpoint> {
  const endpoint = new Endpoint();
  endpoint.id = newId("endpoint");
  endpoint.tenantId = checkTenantId(input.tenantId);
  applyFields(endpoint, guard, input, new Set(ENDPOINT_FIELDS));
  const secret = input.secret === "" ? generateSecret() : checkSecret(input.secret, "secret");
  endpoint.secrets = [{ secret: box.seal(secret), expiresAt: null }];
  endpoint.createdAt = new Date();
  endpoint.updatedAt = endpoint.createdAt;
  await em.persistAndFlush(endpoint);
  return endpoint;
}

/**
 * Changes the fields of endpoint `id` that `paths` name (proto names), in
 * one transaction. Resuming a disabled endpoint (`disabled` to false) also
 * clears its health (failures, circuit, reason), and schedulers wake for
 * its waiting deliveries; turning `ordered` off releases those it parked.
 */
export async function updateEndpoint(
  em: EntityManager,
  guard: DestinationCheck,
  id: string,
  input: Omit<EndpointInput, "tenantId" | "secret">,
  paths: readonly string[],
): Promise<Endpoint> {
  if (paths.length === 0) throw new ValidationError("update_mask", 'name the fields to change, e.g. "url"');
  const fields = new Set<EndpointField>();
  paths.forEach((p, i) => {
    if (p === "secret") throw new ValidationError(`update_mask.paths[${i}]`, '"secret" is changed with RotateEndpointSecret');
    if (!(ENDPOINT_FIELDS as readonly string[]).includes(p)) {
      throw new ValidationError(`update_mask.paths[${i}]`, `"${p}" cannot be changed; these can: ${ENDPOINT_FIELDS.join(", ")}`);
    }
    fields.add(p as EndpointField);
  });
  return em.transactional(async (tx) => {
    const endpoint = await tx.findOne(Endpoint, { id, deletedAt: null }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!endpoint) throw new NotFoundError("endpoint", id);
    const wasDisabled = endpoint.disabled;
    const wasOrdered = endpoint.ordered;
    applyFields(endpoint, guard, input, fields, "endpoint.");
    const resumed = wasDisabled && !endpoint.disabled;
    if (resumed) {
      endpoint.disabledReason = "";
      endpoint.consecutiveFailures = 0;
      endpoint.failingSince = null;
      endpoint.circuitOpenUntil = null;
      endpoint.circuitCooldownMs = null;
      endpoint.circuitProbeUntil = null;
    }
    endpoint.updatedAt = new Date();
    await tx.flush();
    const unordered = wasOrdered && !endpoint.ordered;
    if (unordered) await unparkEndpoint(tx, id);
    if (resumed || unordered) await tx.getConnection().execute("SELECT pg_notify('hookline_due', '')", [], "all", tx.getTransactionContext());
    return endpoint;
  });
}

/** How long a replaced secret keeps signing by default. */
export const DEFAULT_SECRET_GRACE_MS = 24 * 3_600_000;
const MAX_SECRET_GRACE_MS = 30 * 24 * 3_600_000;
/** Secrets an endpoint keeps at most (the current one and those in their grace period). */
const MAX_SECRETS = 5;

/**
 * Replaces endpoint `id`'s signing secret. The replaced ones keep signing
 * (deliveries carry a signature per active secret) until `graceMs` from now
 * (at most their own earlier expiry); a grace of 0 retires them at once.
 */
export async function rotateEndpointSecret(
  em: EntityManager,
  box: SecretBox,
  id: string,
  secret: string,
  graceMs: number = DEFAULT_SECRET_GRACE_MS,
): Promise<{ secret: string; previousExpiresAt: Date | null }> {
  if (!Number.isFinite(graceMs) || graceMs < 0 || graceMs > MAX_SECRET_GRACE_MS) {
    throw new ValidationError("grace_period", "must be from 0 to 30 days");
  }
  const next = secret === "" ? generateSecret() : checkSecret(secret, "secret");
  return em.transactional(async (tx) => {
    const endpoint = await tx.findOne(Endpoint, { id, deletedAt: null }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!endpoint) throw new NotFoundError("endpoint", id);
    const now = Date.now();
    const until = graceMs > 0 ? now + graceMs : null;
    const kept =
      until === null
        ? []
        : endpoint.secrets
            .filter((s) => s.expiresAt === null || Date.parse(s.expiresAt) > now)
            .map((s) => ({
              secret: s.secret,
              expiresAt: new Date(s.expiresAt === null ? until : Math.min(until, Date.parse(s.expiresAt))).toISOString(),
            }));
    endpoint.secrets = [{ secret: box.seal(next), expiresAt: null }, ...kept].slice(0, MAX_SECRETS);
    endpoint.updatedAt = new Date(now);
    await tx.flush();
    return { secret: next, previousExpiresAt: until === null ? null : new Date(until) };
  });
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

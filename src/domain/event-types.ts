/**
 * Event types: a tenant's named kinds of event, each with an optional JSON
 * Schema (draft 2020-12, checked with Ajv) that published payloads must
 * match. Publishing a type that was never created is allowed unless
 * HOOKLINE_STRICT_EVENT_TYPES is on.
 *
 * Schemas are compiled, and payloads checked, in the schema worker threads
 * (schema-pool.ts), never on the event loop that serves every tenant.
 * Publishing consults a per-process cache of types, so a publish costs no
 * extra query once its types are known; entries (also "no such type") live
 * CACHE_MS, so a type created through another process is enforced here
 * within that time, and at once through this one.
 */
import type { EntityManager } from "@mikro-orm/postgresql";
import { EventType } from "../store/entities/index.js";
import { AlreadyExistsError, FailedPreconditionError, ValidationError } from "./errors.js";
import type { CheckFailure, SchemaCheck, SchemaPool } from "./schema-pool.js";
import { checkEventType, checkPageSize, checkTenantId, checkText, decodePageToken, encodePageToken } from "./validate.js";

const CACHE_MS = 5_000;

/** Input of {@link createEventType}. */
export interface NewEventType {
  tenantId: string;
  name: string;
  description: string;
  schema: Record<string, unknown> | undefined;
}

/** Stores an event type; its schema must compile (in the registry's schema workers). */
export async function createEventType(em: EntityManager, input: NewEventType, registry: EventTypeRegistry): Promise<EventType> {
  const type = new EventType();
  type.tenantId = checkTenantId(input.tenantId);
  type.name = checkEventType(input.name, "name");
  if (type.name.endsWith(".*")) throw new ValidationError("name", "an event type name cannot end in a wildcard");
  type.description = checkText(input.description, "description", 1024);
  if (input.schema !== undefined) {
    // Stored as jsonb, which cannot hold U+0000 (not even escaped).
    if (containsNul(input.schema)) throw new ValidationError("schema", "must not contain NUL (U+0000) characters");
    // Size, depth, regexes (on RE2) and compile time are bounded there (json-schema.ts).
    await registry.compileNew(type.tenantId, type.name, input.schema);
    type.schema = input.schema;
  }
  type.createdAt = new Date();
  if (await em.findOne(EventType, { tenantId: type.tenantId, name: type.name })) {
    throw new AlreadyExistsError(`event type ${type.name} already exists for tenant ${type.tenantId}`);
  }
  try {
    await em.persistAndFlush(type);
  } catch (err) {
    if ((err as { code?: string }).code === "23505") {
      throw new AlreadyExistsError(`event type ${type.name} already exists for tenant ${type.tenantId}`);
    }
    throw err;
  }
  registry.forget(type.tenantId, type.name);
  return type;
}

/** Whether a JSON value holds a NUL in any member name or string. */
function containsNul(value: unknown): boolean {
  if (typeof value === "string") return value.includes("\u0000");
  if (Array.isArray(value)) return value.some(containsNul);
  if (typeof value === "object" && value !== null) {
    return Object.entries(value).some(([name, member]) => name.includes("\u0000") || containsNul(member));
  }
  return false;
}

/** A page of a tenant's event types, by name. */
export async function listEventTypes(
  em: EntityManager,
  tenantId: string,
  pageSize: number,
  pageToken: string,
): Promise<{ types: EventType[]; nextPageToken: string }> {
  const tenant = checkTenantId(tenantId);
  const size = checkPageSize(pageSize);
  const after = decodePageToken(pageToken);
  const rows = await em.find(
    EventType,
    after === undefined ? { tenantId: tenant } : { tenantId: tenant, name: { $gt: after } },
    { orderBy: { name: "asc" }, limit: size + 1 },
  );
  const more = rows.length > size;
  const types = more ? rows.slice(0, size) : rows;
  return { types, nextPageToken: more ? encodePageToken(types.at(-1)!.name) : "" };
}

/** What the cache holds for a type. */
interface Entry {
  /**
   * Null: no such type. Undefined: the type exists without a schema.
   * `text`: its schema's JSON text, which compiled. `unusable`: why its
   * stored schema cannot be used (see {@link EventTypeRegistry}).
   */
  schema: null | undefined | { text: string } | { unusable: string };
  until: number;
}

/** One payload to check. */
export interface PayloadToCheck {
  tenantId: string;
  eventType: string;
  /** The payload's JSON text. */
  data: string;
  /** Names the request field of the payload in errors ("events[3].payload"). */
  field: string;
  /** Names the event type field in errors. */
  typeField: string;
}

/** Told of a stored schema that cannot be used: the tenant, the type and why. */
export type UnusableSchemaListener = (tenantId: string, name: string, reason: string) => void;

/**
 * Checks published payloads against their types' schemas; see the module
 * comment.
 *
 * A stored schema is compiled under the rules of json-schema.ts, like a
 * new one. One that they refuse (stored before them: a pattern RE2 cannot
 * run, such as a backreference, or a schema over today's size bounds) is
 * never run on a backtracking engine: publishes of its type fail with
 * FailedPrecondition, naming the reason, until an operator replaces it.
 * Failing open would let payloads through unchecked that the type promised
 * its receivers to check.
 *
 * A check that runs past the pool's deadline fails its publish with
 * InvalidArgument naming the payload, and suspends the schema for the
 * tenant: publishes of its types fail at once with FailedPrecondition
 * naming `event_type` until the suspension ends (see schema-pool.ts).
 */
export class EventTypeRegistry {
  private readonly cache = new Map<string, Entry>();
  /** Schemas known to compile (true), or why one cannot be used, by JSON text, so reloading a type does not compile again. */
  private readonly compiled = new Map<string, true | string>();

  constructor(
    private readonly em: () => EntityManager,
    private readonly pool: SchemaPool,
    private readonly strict: boolean,
    private readonly onUnusable: UnusableSchemaListener = () => {},
  ) {}

  /** Drops what is cached for a type (it was just created here). */
  forget(tenantId: string, name: string): void {
    this.cache.delete(`${tenantId}\u0000${name}`);
  }

  /**
   * Compiles the schema of a new type in the pool; throws a ValidationError
   * naming `schema` when it is refused, takes too long to compile, or is
   * suspended for the tenant.
   */
  async compileNew(tenantId: string, name: string, schema: unknown): Promise<void> {
    const text = JSON.stringify(schema);
    const failure = await this.pool.compile(tenantId, text, name);
    if (!failure) {
      this.remember(text, true);
      return;
    }
    switch (failure.kind) {
      case "refused":
        throw new ValidationError(failure.field, failure.message);
      case "stopped":
        throw new ValidationError("schema", `takes over ${this.pool.compileTimeoutMs} ms to compile; make it smaller or simpler`);
      case "suspended":
        throw new ValidationError("schema", `is refused for another ${seconds(failure.remainingMs)} s in this process: ${failure.reason}`);
    }
  }

  /** Throws for the first payload that its type refuses (by index): a ValidationError, or a FailedPreconditionError for an unusable or suspended type. */
  async check(payloads: readonly PayloadToCheck[]): Promise<void> {
    const now = Date.now();
    const missing = new Map<string, { tenantId: string; name: string }>();
    for (const p of payloads) {
      const key = `${p.tenantId}\u0000${p.eventType}`;
      const entry = this.cache.get(key);
      if (!entry || entry.until <= now) missing.set(key, { tenantId: p.tenantId, name: p.eventType });
    }
    if (missing.size > 0) await this.load([...missing.values()], now);
    // Refusals known here stop the walk: payloads after the first one do not matter.
    let refusal: { index: number; error: Error } | undefined;
    const byTenant = new Map<string, { checks: SchemaCheck[]; indexes: number[] }>();
    for (const [i, p] of payloads.entries()) {
      const schema = this.cache.get(`${p.tenantId}\u0000${p.eventType}`)!.schema;
      if (schema === null) {
        if (!this.strict) continue;
        refusal = {
          index: i,
          error: new ValidationError(p.typeField, `"${p.eventType}" is not an event type of tenant ${p.tenantId} (HOOKLINE_STRICT_EVENT_TYPES is on)`),
        };
        break;
      }
      if (schema === undefined) continue;
      if ("unusable" in schema) {
        refusal = { index: i, error: unusable(p, schema.unusable) };
        break;
      }
      let group = byTenant.get(p.tenantId);
      if (!group) {
        group = { checks: [], indexes: [] };
        byTenant.set(p.tenantId, group);
      }
      group.checks.push({ schema: schema.text, data: p.data, label: p.eventType });
      group.indexes.push(i);
    }
    const failures = await Promise.all(
      [...byTenant].map(async ([tenantId, group]) => {
        const failure = await this.pool.check(tenantId, group.checks);
        return failure && { index: group.indexes[failure.index]!, failure };
      }),
    );
    for (const f of failures) {
      if (f && (!refusal || f.index < refusal.index)) refusal = { index: f.index, error: this.refusal(payloads[f.index]!, f.failure) };
    }
    if (refusal) throw refusal.error;
  }

  /** The error of a payload the pool refused. */
  private refusal(p: PayloadToCheck, failure: CheckFailure): Error {
    switch (failure.kind) {
      case "invalid": {
        const path = failure.path
          .split("/")
          .slice(1)
          .map((s) => (/^\d+$/.test(s) ? `[${s}]` : `.${s.replaceAll("~1", "/").replaceAll("~0", "~")}`))
          .join("");
        return new ValidationError(`${p.field}${path}`, `${failure.message} (schema of ${p.eventType})`);
      }
      case "recursion":
        return new ValidationError(p.field, `cannot be checked: the schema of ${p.eventType} recurses without end`);
      case "refused":
        return unusable(p, `${failure.field}: ${failure.message}`);
      case "stopped":
        return new ValidationError(
          p.field,
          `cannot be checked: ${failure.reason} (schema of ${p.eventType}); event type ${p.eventType} is suspended for ${seconds(this.pool.suspendMs)} s in this process`,
        );
      case "suspended":
        return new FailedPreconditionError(
          `${p.typeField}: event type ${p.eventType} is suspended for another ${seconds(failure.remainingMs)} s in this process (${failure.reason}); make its schema simpler or its payloads smaller`,
        );
    }
  }

  private remember(text: string, outcome: true | string): void {
    if (this.compiled.size >= 10_000) this.compiled.clear();
    this.compiled.set(text, outcome);
  }

  /** The cache entry of a stored schema: compiled in the pool the first time this process sees its text. */
  private async entryOf(tenantId: string, name: string, schema: Record<string, unknown>): Promise<Entry["schema"]> {
    const text = JSON.stringify(schema);
    let outcome = this.compiled.get(text);
    if (outcome === undefined) {
      const failure = await this.pool.compile(tenantId, text, name);
      // Too slow to compile, or suspended: the publishes' checks meet the suspension.
      if (failure && failure.kind !== "refused") return { text };
      outcome = failure ? `${failure.field}: ${failure.message}` : true;
      if (typeof outcome === "string") this.onUnusable(tenantId, name, outcome);
      this.remember(text, outcome);
    }
    return outcome === true ? { text } : { unusable: outcome };
  }

  private async load(types: readonly { tenantId: string; name: string }[], now: number): Promise<void> {
    const rows = await this.em().find(EventType, { $or: types.map((t) => ({ tenantId: t.tenantId, name: t.name })) });
    const found = new Map(rows.map((r) => [`${r.tenantId}\u0000${r.name}`, r]));
    const entries = await Promise.all(
      types.map(async (t) => {
        const row = found.get(`${t.tenantId}\u0000${t.name}`);
        return row ? (row.schema ? this.entryOf(t.tenantId, t.name, row.schema) : undefined) : null;
      }),
    );
    for (const [i, t] of types.entries()) this.cache.set(`${t.tenantId}\u0000${t.name}`, { schema: entries[i]!, until: now + CACHE_MS });
    if (this.cache.size > 10_000) {
      for (const [k, v] of this.cache) if (v.until <= now) this.cache.delete(k);
    }
  }
}

/** The error of a publish of a type whose stored schema cannot be used. */
function unusable(p: PayloadToCheck, reason: string): FailedPreconditionError {
  return new FailedPreconditionError(
    `${p.typeField}: the stored schema of event type ${p.eventType} cannot be used (${reason}); an operator must replace it`,
  );
}

/** Whole seconds, rounded up. */
function seconds(ms: number): number {
  return Math.ceil(ms / 1000);
}

/**
 * Statuses and status-log kinds in SQL come from the state machine
 * (domain/delivery/state.ts, through store/sql/states.ts), twice over:
 * - in the sources: no string or template literal under src/ (migrations
 *   aside: they are history) writes a status or kind as a bare number;
 * - in the statements as built: every SQL operation of src/store/sql is run
 *   against a recording stand-in for the database, and the text it sends
 *   must agree with the enums and the transition table.
 * The first block holds the readers of SQL text to statements that break
 * the rules, so neither check can pass by seeing nothing.
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { EntityManager } from "@mikro-orm/postgresql";
import { describe, expect, it } from "vitest";
import type { AttemptOutcome } from "../../src/domain/delivery/outcome.js";
import { DeliveryState, TRANSITIONS } from "../../src/domain/delivery/state.js";
import type { SecretBox } from "../../src/signing/secret-box.js";
import type { Sql } from "../../src/store/sql.js";
import { checkSecretKey, sealStoredSecrets } from "../../src/store/sql/endpoint-secrets.js";
import { findApiKey, insertApiKey, listApiKeys, revokeApiKey, validApiKeys } from "../../src/store/sql/api-keys.js";
import { holdForCircuit, releaseHeld, sweepBlocked } from "../../src/store/sql/circuit-holds.js";
import { type ClaimRequest, claim as claimWithRest, claimDue } from "../../src/store/sql/claim-due.js";
import { lastFinalPosition, positionBefore, readUpdates, ALL, START } from "../../src/store/sql/delivery-updates.js";
import { failPendingOfDeleted, unparkEndpoint } from "../../src/store/sql/endpoint-changes.js";
import { endpointFigures } from "../../src/store/sql/endpoint-stats.js";
import { failPendingOfDisabled } from "../../src/store/sql/fail-disabled.js";
import { insertEvents } from "../../src/store/sql/insert-events.js";
import { readQueueGauges } from "../../src/store/sql/queue-gauges.js";
import { recordOutcomes } from "../../src/store/sql/record-outcomes.js";
import { releaseLeases, releaseUnstarted } from "../../src/store/sql/release-leases.js";
import { requeueDelivery } from "../../src/store/sql/requeue.js";
import { requeueFailed } from "../../src/store/sql/requeue-failed.js";
import { pruneOlderThan } from "../../src/store/sql/retention.js";
import { unparkOrphans } from "../../src/store/sql/unpark.js";
import { heartbeat, unregister } from "../../src/store/sql/workers.js";
import { bareNumbers, disagreements, inserts, stringLiterals } from "../support/sql-text.js";

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));
const STORE_SQL = fileURLToPath(new URL("../../src/store/sql/", import.meta.url));

describe("the readers of SQL text", () => {
  it("find a source's string and template literals, not its comments or regular expressions", () => {
    const source = [
      "// status IN (1, 2) in a comment",
      "/* WHEN 3 THEN 4 */",
      "const re = /['`]status = 4/g;",
      "const a = 'status = 1';",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a source with templates, as text
      "const b = `SELECT ${f(`WHEN ${x} THEN 1`)} WHERE status IN ${LIVE}`;",
      "const half = n / 2; const c = \"kind = 6\";",
    ].join("\n");
    expect(stringLiterals(source)).toEqual([
      { text: "status = 1", line: 4 },
      { text: "WHEN $expr THEN 1", line: 5 },
      { text: "SELECT $expr WHERE status IN $expr", line: 5 },
      { text: "kind = 6", line: 6 },
    ]);
  });

  it("flag every way of writing a status or kind as a bare number", () => {
    const broken = [
      "SELECT 1 FROM deliveries WHERE status IN (1, 2)",
      "UPDATE deliveries d SET status = 4 WHERE d.status <> 3",
      "SELECT CASE status WHEN 3 THEN 4 END FROM deliveries",
      "SELECT 1 FROM deliveries WHERE status = ANY (ARRAY[1, 2])",
      "INSERT INTO delivery_updates (delivery_id, kind, status) SELECT id, 6, $expr FROM failed",
      "INSERT INTO deliveries (id, status) VALUES ($1, 1)",
    ];
    for (const text of broken) expect(bareNumbers(text), text).not.toEqual([]);
    const fine = [
      "SELECT 1 FROM deliveries WHERE status IN $expr AND response_status BETWEEN 200 AND 299",
      "UPDATE deliveries d SET status = r.status, attempt_count = 3 FROM r",
      "INSERT INTO delivery_updates (delivery_id, kind, status) SELECT id, $expr, $expr FROM failed -- kind 6, status 4",
    ];
    for (const text of fine) expect(bareNumbers(text), text).toEqual([]);
  });

  it("flag statements whose numbers disagree with the enums or the transition table", () => {
    const wrong = [
      // Not a status; a list the partial indexes would not match; not a kind.
      "SELECT 1 FROM deliveries WHERE status IN (1, 5)",
      "SELECT 1 FROM deliveries WHERE status IN (2, 1)",
      "SELECT 1 FROM delivery_updates WHERE kind = 9",
      // SUCCEEDED logged as RETRY_SCHEDULED; any other status made up.
      "SELECT CASE status WHEN 3 THEN 3 END",
      "SELECT CASE status WHEN 3 THEN 4 ELSE 3 END",
      // ENDPOINT_DISABLED with SUCCEEDED; FAILED set but RETRYING logged.
      "INSERT INTO delivery_updates (delivery_id, kind, status) SELECT id, 6, 3 FROM failed",
      "WITH f AS (UPDATE deliveries SET status = 4 RETURNING id) INSERT INTO delivery_updates (delivery_id, kind, status) SELECT id, 7, 2 FROM f",
      // A new delivery that starts RETRYING.
      "INSERT INTO deliveries (id, status) SELECT id, 2 FROM e",
    ];
    for (const text of wrong) expect(disagreements(text), text).not.toEqual([]);
    const right = [
      "SELECT 1 FROM deliveries WHERE status IN (1, 2) AND status = 4",
      "SELECT CASE status WHEN 3 THEN 4 WHEN 2 THEN 3 WHEN 4 THEN 5 END",
      "WITH f AS (UPDATE deliveries d SET status = 4, locked_by = NULL RETURNING id) INSERT INTO delivery_updates (delivery_id, kind, status) SELECT id, 6, 4 FROM f",
    ];
    for (const text of right) expect(disagreements(text), text).toEqual([]);
  });
});

/** Every .ts file under src/, but the migrations. */
function sourceFiles(): string[] {
  return (readdirSync(SRC, { recursive: true }) as string[])
    .filter((f) => f.endsWith(".ts") && !f.startsWith("store/migrations/"))
    .sort();
}

describe("SQL text in src/", () => {
  const literals = sourceFiles().flatMap((file) =>
    stringLiterals(readFileSync(SRC + file, "utf8")).map((l) => ({ ...l, file })),
  );

  it("writes no status or status-log kind as a bare number", () => {
    const found = literals.flatMap((l) =>
      bareNumbers(l.text).map((f) => {
        const line = l.line + (l.text.slice(0, f.index).match(/\n/g)?.length ?? 0);
        return `src/${l.file}:${line}: ${f.rule}: ${f.match}`;
      }),
    );
    expect(found).toEqual([]);
  });

  it("is read whole: every file writing deliveries or the status log has those statements among its literals", () => {
    const WRITE = /\b(?:UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+(?:deliveries|delivery_updates|delivery_queue)\b/;
    const inSource = sourceFiles().filter((f) => WRITE.test(readFileSync(SRC + f, "utf8")));
    const inLiterals = [...new Set(literals.filter((l) => WRITE.test(l.text)).map((l) => l.file))].sort();
    expect(inLiterals).toEqual(inSource);
    expect(inLiterals.length).toBeGreaterThanOrEqual(10);
  });
});

/** A stand-in for the database that keeps every statement sent and answers no rows. */
function recorder(): { sql: Sql; tx: EntityManager; texts: string[] } {
  const texts: string[] = [];
  const sql: Sql = {
    query: async (text) => {
      texts.push(text);
      return [];
    },
  };
  const tx = {
    getConnection: () => ({
      execute: async (text: string) => {
        texts.push(text);
        return [];
      },
    }),
    getTransactionContext: () => undefined,
  } as unknown as EntityManager;
  return { sql, tx, texts };
}

const claim: ClaimRequest = {
  workerId: "w",
  limit: 8,
  leaseMarginMs: 1_000,
  defaultTimeoutMs: 1_000,
  exclude: ["ep_x"],
  laneFree: new Map([["ep_1", 1]]),
  excludeTenants: [],
  tenants: new Map([["t", { free: 4, newEndpointFree: 2 }]]),
  newTenant: { free: 4, newEndpointFree: 2 },
  defaultMaxInFlight: 4,
  workers: 1,
  circuitFailureThreshold: 5,
  lookahead: 32,
};

const outcome: AttemptOutcome = {
  attemptId: "atm_1",
  deliveryId: "dlv_1",
  endpointId: "ep_1",
  attemptNumber: 1,
  startedAt: new Date(),
  durationMs: 5,
  responseStatus: 500,
  errorClass: "http",
  error: "HTTP 500",
  responseBody: "",
  responseHeaders: null,
  status: DeliveryState.Retrying,
  nextAttemptAt: new Date(),
  success: false,
  gone: false,
  leaseUntil: new Date(),
};

const box = { open: (s: string) => s, seal: (s: string) => s } as unknown as SecretBox;
const since = new Date(Date.now() - 60_000);

/**
 * Every SQL operation of src/store/sql, by its exported name, run with
 * inputs that make it send its statements (empty inputs send none).
 */
const OPERATIONS: Record<string, (r: ReturnType<typeof recorder>) => Promise<unknown>> = {
  claimDue: async ({ sql }) => {
    await claimDue(sql, claim);
    await claimDue(sql, { ...claim, ids: ["dlv_1"] });
  },
  claim: ({ sql }) => claimWithRest(sql, claim),
  recordOutcomes: ({ sql }) =>
    recordOutcomes(sql, "w", [outcome], { circuitFailureThreshold: 5, circuitCooldownMs: 1, circuitMaxCooldownMs: 2, disableAfterMs: 3 }),
  failPendingOfDisabled: ({ sql }) => failPendingOfDisabled(sql, ["ep_1"]),
  releaseLeases: ({ sql }) => releaseLeases(sql, "w"),
  releaseUnstarted: ({ sql }) => releaseUnstarted(sql, "w", [{ id: "dlv_1", leaseUntil: new Date() }]),
  holdForCircuit: ({ sql }) => holdForCircuit(sql, ["ep_1"]),
  sweepBlocked: ({ sql }) => sweepBlocked(sql),
  releaseHeld: ({ sql }) => releaseHeld(sql, [{ endpointId: "ep_1", heldUntil: new Date() }]),
  unparkOrphans: ({ sql }) => unparkOrphans(sql),
  requeueDelivery: ({ sql }) => requeueDelivery(sql, "dlv_1"),
  requeueFailed: ({ sql }) => requeueFailed(sql, "ep_1", since, new Date()),
  // No rows come back, so it then looks for the duplicates it takes them for, and throws.
  insertEvents: ({ sql }) =>
    insertEvents(sql, [{ id: "evt_1", tenantId: "t", eventType: "e", channels: [], idempotencyKey: "k", body: "{}", data: "{}" }], 1_000),
  pruneOlderThan: ({ sql }) => pruneOlderThan(sql, since),
  endpointFigures: ({ sql }) => endpointFigures(sql, "ep_1", since),
  readQueueGauges: ({ sql }) => readQueueGauges(sql),
  readUpdates: ({ sql }) => readUpdates(sql, START, ALL, 10),
  lastFinalPosition: ({ sql }) => lastFinalPosition(sql),
  positionBefore: ({ sql }) => positionBefore(sql, since),
  heartbeat: ({ sql }) => heartbeat(sql, "w", 1_000),
  unregister: ({ sql }) => unregister(sql, "w"),
  insertApiKey: ({ sql }) =>
    insertApiKey(sql, { id: "key_1", tenantId: "t", scope: 1, description: "", tokenPrefix: "", tokenHash: Buffer.alloc(0) }),
  findApiKey: ({ sql }) => findApiKey(sql, "key_1"),
  listApiKeys: ({ sql }) => listApiKeys(sql, "t", "", 10),
  revokeApiKey: ({ sql }) => revokeApiKey(sql, "key_1"),
  validApiKeys: ({ sql }) => validApiKeys(sql, ["key_1"]),
  checkSecretKey: ({ sql }) => checkSecretKey(sql, box),
  sealStoredSecrets: ({ sql }) => sealStoredSecrets(sql, box),
  failPendingOfDeleted: ({ tx }) => failPendingOfDeleted(tx, "ep_1"),
  unparkEndpoint: ({ tx }) => unparkEndpoint(tx, "ep_1"),
};

/** Exports of src/store/sql that send no statement of their own. */
const NOT_OPERATIONS = new Set([
  // Pure helpers.
  "foldHealth",
  "comparePositions",
  "encodeCursor",
  "decodeCursor",
  "sqlStatus",
  "sqlKind",
  "sqlStates",
  "sqlTransition",
  "sqlLogKindAfterAttempt",
  // Pieces of statements (lease-room.ts), tested through the claim and the publish.
  "Params",
  "roomTables",
  "notExcluded",
  "endpointFree",
  "tenantFree",
  "leaseEnd",
  // A piece of statements (deliveries-of-event.ts), tested on its own and through retention and listing.
  "ofEvent",
  // Group commit over insertEvents.
  "InsertQueue",
  "InsertQueueFullError",
]);

/** The statements each operation sends. */
async function statements(): Promise<Map<string, string[]>> {
  const sent = new Map<string, string[]>();
  for (const [name, run] of Object.entries(OPERATIONS)) {
    const r = recorder();
    // Answered no rows, some operations fail once their statements are sent.
    await run(r).catch(() => {});
    sent.set(name, r.texts);
  }
  return sent;
}

const sent = await statements();

describe("statements as built", () => {
  it("come from every SQL operation of src/store/sql, each sending at least one", async () => {
    const exported: string[] = [];
    for (const file of readdirSync(STORE_SQL).filter((f) => f.endsWith(".ts"))) {
      const module = (await import(STORE_SQL + file)) as Record<string, unknown>;
      for (const [name, value] of Object.entries(module)) if (typeof value === "function") exported.push(name);
    }
    expect(exported.filter((name) => !NOT_OPERATIONS.has(name)).sort()).toEqual(Object.keys(OPERATIONS).sort());
    for (const [name, texts] of sent) expect(texts.length, name).toBeGreaterThan(0);
  });

  it.each([...sent.keys()])("%s: statuses and log kinds agree with the enums and the transitions", (name) => {
    for (const text of sent.get(name)!) expect(disagreements(text), text).toEqual([]);
  });

  it("write, between them, the log row of every transition and none other", () => {
    const written = new Set<string>();
    for (const text of [...sent.values()].flat()) {
      for (const ins of inserts(text).filter((i) => i.table === "delivery_updates")) {
        const kind = ins.values.get("kind")!;
        const status = ins.values.get("status")!;
        if (/^\d+$/.test(kind) && /^\d+$/.test(status)) written.add(`${status}->${kind}`);
        for (const w of kind.matchAll(/WHEN\s+(\d+)\s+THEN\s+(\d+)/gi)) written.add(`${w[1]}->${w[2]}`);
      }
      // Every status log insert was read (a reader that skips one would check nothing).
      const logInserts = text.match(/INSERT INTO delivery_updates/g)?.length ?? 0;
      expect(inserts(text).filter((i) => i.table === "delivery_updates").length, text).toBe(logInserts);
    }
    const expected = new Set(Object.values(TRANSITIONS).map((t) => `${t.to}->${t.log}`));
    expect([...written].sort()).toEqual([...expected].sort());
  });
});

/**
 * `hookline event-types` and `hookline api-keys` run as real processes
 * against a real Hookline: a schema from a file that Publish then enforces,
 * a key whose token is printed once and works with the scope it was given,
 * and revoking it, with the errors a user makes and their exit codes.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromJsonString } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiKeySchema, ApiKeyScope } from "../../gen/hookline/v1/api_key_pb.js";
import { EventTypeSchema } from "../../gen/hookline/v1/event_type_pb.js";
import { CreateApiKeyResponseSchema, RevokeApiKeyResponseSchema } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { runCli } from "../support/cli.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";

const TOKEN = "cli-test-admin-token-abcdefghij";
let env: Record<string, string>;
let dir: string;

const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_ADMIN_TOKEN: TOKEN });

beforeAll(async () => {
  env = { HOOKLINE_URL: app.url, HOOKLINE_TOKEN: TOKEN };
  dir = await mkdtemp(join(tmpdir(), "hookline-cli-"));
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("hookline event-types", () => {
  it("creates a type with a schema from a file, lists it, and Publish enforces the schema", async () => {
    const schemaFile = join(dir, "invoice.schema.json");
    await writeFile(
      schemaFile,
      JSON.stringify({ type: "object", required: ["amount"], properties: { amount: { type: "integer", minimum: 0 } } }),
    );
    const created = await runCli(
      ["event-types", "create", "invoice.paid", "--tenant", "types", "--description", "an invoice was paid", "--schema", `@${schemaFile}`],
      env,
    );
    expect(created).toMatchObject({ code: 0, stderr: "" });
    expect(created.stdout).toMatch(/^name:\s+invoice\.paid$/m);
    expect(created.stdout).toMatch(/^description:\s+an invoice was paid$/m);
    expect(created.stdout).toContain('"required": [');

    // A schema on stdin, and a type without one.
    expect((await runCli(["event-types", "create", "invoice.void", "--tenant", "types", "--schema", "-"], env, '{"type":"object"}')).code).toBe(0);
    expect((await runCli(["event-types", "create", "user.created", "--tenant", "types"], env)).code).toBe(0);

    const listed = await runCli(["event-types", "list", "--tenant", "types"], env);
    expect(listed.code).toBe(0);
    const rows = listed.stdout.trim().split("\n");
    expect(rows[0]).toMatch(/^NAME\s+SCHEMA\s+CREATED\s+DESCRIPTION$/);
    expect(rows.slice(1).map((row) => row.split(/\s+/).slice(0, 2))).toEqual([
      ["invoice.paid", "yes"],
      ["invoice.void", "yes"],
      ["user.created", "no"],
    ]);

    const json = await runCli(["--json", "event-types", "list", "--tenant", "types", "--limit", "2"], env);
    const types = json.stdout.trim().split("\n").map((line) => fromJsonString(EventTypeSchema, line));
    expect(types.map((t) => t.name)).toEqual(["invoice.paid", "invoice.void"]);
    expect(types[0]!.schema).toMatchObject({ required: ["amount"] });

    const bad = await runCli(["publish", "invoice.paid", '{"amount":-5}', "--tenant", "types"], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("hookline: INVALID_ARGUMENT: payload_json.amount: must be >= 0 (schema of invoice.paid)\n");
    expect((await runCli(["publish", "invoice.paid", '{"amount":5}', "--tenant", "types"], env)).code).toBe(0);

    expect(await runCli(["event-types", "list", "--tenant", "nobody"], env)).toMatchObject({ code: 0, stdout: "no event types for tenant nobody\n" });
  });

  it("names what is wrong: a duplicate, a schema that is not one, unreadable input", async () => {
    await runCli(["event-types", "create", "order.placed", "--tenant", "types-bad"], env);
    const dup = await runCli(["event-types", "create", "order.placed", "--tenant", "types-bad"], env);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toMatch(/^hookline: ALREADY_EXISTS: /);

    const notSchema = await runCli(["event-types", "create", "order.x", "--tenant", "types-bad", "--schema", '{"type":"no-such-type"}'], env);
    expect(notSchema.code).toBe(1);
    expect(notSchema.stderr).toMatch(/^hookline: INVALID_ARGUMENT: schema/);

    const notJson = await runCli(["event-types", "create", "order.y", "--tenant", "types-bad", "--schema", "{nope"], env);
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toMatch(/^hookline: <data>: not JSON/);

    const missing = await runCli(["event-types", "create", "order.z", "--tenant", "types-bad", "--schema", `@${join(dir, "missing.json")}`], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("ENOENT");

    const noTenant = await runCli(["event-types", "list"], env);
    expect(noTenant.code).toBe(2);
    expect(noTenant.stderr).toContain("--tenant");
  });
});

describe("hookline api-keys", () => {
  it("creates a key whose token is shown once and works within its scope, lists it without the token, revokes it", async () => {
    const created = await runCli(["api-keys", "create", "--tenant", "keys", "--scope", "ingest", "--description", "billing service"], env);
    expect(created.code).toBe(0);
    const token = /^token:\s+(\S+)$/m.exec(created.stdout)?.[1];
    expect(token).toBeDefined();
    const id = /^id:\s+(key_\S+)$/m.exec(created.stdout)![1]!;
    expect(created.stdout).toMatch(/^scope:\s+ingest$/m);
    expect(created.stderr).toContain("cannot show it again");

    // The ingest key publishes for its tenant (named or not) and nothing else.
    const keyEnv = { HOOKLINE_URL: app.url, HOOKLINE_TOKEN: token! };
    expect((await runCli(["publish", "user.created", '{"id":1}'], keyEnv)).code).toBe(0);
    const other = await runCli(["publish", "user.created", '{"id":1}', "--tenant", "someone-else"], keyEnv);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/^hookline: PERMISSION_DENIED: /);
    const admin = await runCli(["endpoints", "list", "--tenant", "keys"], keyEnv);
    expect(admin.code).toBe(1);
    expect(admin.stderr).toMatch(/^hookline: PERMISSION_DENIED: /);

    const json = await runCli(["--json", "api-keys", "create", "--tenant", "keys", "--scope", "API_KEY_SCOPE_ADMIN"], env);
    const second = fromJsonString(CreateApiKeyResponseSchema, json.stdout.trim());
    expect(second.apiKey!.scope).toBe(ApiKeyScope.ADMIN);
    expect(second.token).not.toBe("");
    expect(json.stderr).toBe("");

    const listed = await runCli(["api-keys", "list", "--tenant", "keys"], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).not.toContain(token!);
    expect(listed.stdout).not.toContain(second.token);
    const rows = listed.stdout.trim().split("\n");
    expect(rows[0]).toMatch(/^ID\s+SCOPE\s+PREFIX\s+STATE\s+CREATED\s+DESCRIPTION$/);
    expect(rows[1]).toMatch(new RegExp(`^${id}\\s+ingest\\s+\\S+\\s+valid\\s+\\S+\\s+billing service$`));
    expect(rows[2]).toMatch(new RegExp(`^${second.apiKey!.id}\\s+admin\\s`));

    const revoked = await runCli(["--json", "api-keys", "revoke", id], env);
    expect(revoked.code).toBe(0);
    expect(fromJsonString(RevokeApiKeyResponseSchema, revoked.stdout.trim()).apiKey!.revokedAt).toBeDefined();
    const refused = await runCli(["publish", "user.created", '{"id":2}'], keyEnv);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^hookline: UNAUTHENTICATED: /);

    const afterRevoke = await runCli(["--json", "api-keys", "list", "--tenant", "keys"], env);
    const keys = afterRevoke.stdout.trim().split("\n").map((line) => fromJsonString(ApiKeySchema, line));
    expect(keys.map((k) => [k.id, k.revokedAt !== undefined])).toEqual([
      [id, true],
      [second.apiKey!.id, false],
    ]);
    expect((await runCli(["api-keys", "list", "--tenant", "keys"], env)).stdout).toMatch(new RegExp(`^${id}\\s+ingest\\s+\\S+\\s+revoked \\S+`, "m"));
  });

  it("names what is wrong: a scope that does not exist, an unknown key, no admin token", async () => {
    const badScope = await runCli(["api-keys", "create", "--tenant", "keys-bad", "--scope", "root"], env);
    expect(badScope.code).toBe(2);
    expect(badScope.stderr).toContain("expected ingest");

    const noScope = await runCli(["api-keys", "create", "--tenant", "keys-bad"], env);
    expect(noScope.code).toBe(2);
    expect(noScope.stderr).toContain("--scope");

    const unknown = await runCli(["api-keys", "revoke", "key_nope"], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^hookline: NOT_FOUND: /);

    const anonymous = await runCli(["api-keys", "list", "--tenant", "keys-bad"], { HOOKLINE_URL: app.url });
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/^hookline: UNAUTHENTICATED: [^\n]*\nhookline: pass a token/);
  });
});

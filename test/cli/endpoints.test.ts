/**
 * `hookline endpoints ...` run as a real process against a real Hookline
 * with an admin token: each subcommand in text and --json, the update mask,
 * test events, and the errors a user makes (bad values, unknown ids, no
 * token), with their exit codes.
 */
import { fromJsonString } from "@bufbuild/protobuf";
import { beforeAll, describe, expect, it } from "vitest";
import { SignatureScheme } from "../../gen/hookline/v1/endpoint_pb.js";
import { CreateEndpointResponseSchema, GetEndpointResponseSchema, RotateEndpointSecretResponseSchema, SendTestEventResponseSchema } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { createHooklineClient, type HooklineClient } from "../../src/client/index.js";
import { runCli } from "../support/cli.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";

const TOKEN = "cli-test-admin-token-0123456789";
let hookline: HooklineClient;
let env: Record<string, string>;

const r = useReceiver((_, req) => (req.path === "/fail" ? { status: 503, body: "down" } : { status: 200, body: "ok" }));
const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_ADMIN_TOKEN: TOKEN });

beforeAll(async () => {
  hookline = createHooklineClient({ baseUrl: app.url, token: TOKEN });
  env = { HOOKLINE_URL: app.url, HOOKLINE_TOKEN: TOKEN };
});

/** An endpoint of `tenant` to run commands on, made through the client (`create` has tests of its own). */
async function createEndpoint(tenant: string, path = "/hook"): Promise<string> {
  const { endpoint } = await hookline.admin.createEndpoint({ tenantId: tenant, url: `${r.url}${path}` });
  return endpoint!.id;
}

describe("hookline endpoints", () => {
  it("create maps every flag to the request and prints the endpoint with its secret", async () => {
    const res = await runCli(
      [
        "endpoints",
        "create",
        `${r.url}/all-flags`,
        "--tenant",
        "acme",
        "--description",
        "billing",
        "--event-types",
        "invoice.*, user.created",
        "--channels",
        "eu",
        "-H",
        "X-Api-Key: k1",
        "--header",
        "X-Team: payments",
        "--scheme",
        "github",
        "--retry-exponential",
        "2s,1h,5",
        "--timeout",
        "30s",
        "--max-in-flight",
        "4",
        "--rate-limit",
        "2.5",
        "--ordered",
      ],
      env,
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^id: +ep_\w+$/m);
    expect(res.stdout).toMatch(/^event types: +invoice\.\*, user\.created$/m);
    expect(res.stdout).toMatch(/^retry policy: +exponential 2s to 1h, 5 attempts$/m);
    expect(res.stdout).toMatch(/^secret: +whsec_/m);
    const id = /^id: +(ep_\w+)$/m.exec(res.stdout)![1]!;
    const { endpoint } = await hookline.admin.getEndpoint({ id });
    expect(endpoint).toMatchObject({
      tenantId: "acme",
      url: `${r.url}/all-flags`,
      description: "billing",
      eventTypes: ["invoice.*", "user.created"],
      channels: ["eu"],
      headers: { "x-api-key": "k1", "x-team": "payments" },
      signatureScheme: SignatureScheme.GITHUB,
      timeoutSeconds: 30,
      maxInFlight: 4,
      rateLimitPerSecond: 2.5,
      ordered: true,
      disabled: false,
    });
    expect(endpoint!.retryPolicy!.policy).toMatchObject({ case: "exponential", value: { maxAttempts: 5 } });
  });

  it("create --json prints the CreateEndpointResponse as protobuf JSON, secret included", async () => {
    const res = await runCli(
      ["endpoints", "create", `${r.url}/json`, "--tenant", "json", "--retry-schedule", "5s,1m", "--disabled", "--json"],
      env,
    );
    expect(res.code, res.stderr).toBe(0);
    const json = JSON.parse(res.stdout);
    expect(json.endpoint).toMatchObject({
      tenantId: "json",
      disabled: true,
      secret: expect.stringMatching(/^whsec_/),
      retryPolicy: { schedule: { delays: ["5s", "60s"] } },
    });
    expect(fromJsonString(CreateEndpointResponseSchema, res.stdout).endpoint!.disabled).toBe(true);
  });

  it("list, get and stats print a table and blocks, or one JSON message per line", async () => {
    const first = await createEndpoint("listing", "/one");
    const second = await createEndpoint("listing", "/two");
    const [table, ndjson, limited, get, getJson, stats] = await Promise.all([
      runCli(["endpoints", "list", "--tenant", "listing"], env),
      runCli(["--json", "endpoints", "list", "--tenant", "listing"], env),
      runCli(["endpoints", "list", "--tenant", "listing", "--limit", "1"], env),
      runCli(["endpoints", "get", first], env),
      runCli(["endpoints", "get", first, "--json"], env),
      runCli(["endpoints", "stats", first, "--window", "1h"], env),
    ]);
    expect(table.code, table.stderr).toBe(0);
    const rows = table.stdout.trimEnd().split("\n");
    expect(rows[0]).toMatch(/^ID +STATE +EVENT TYPES +CREATED +URL$/);
    expect(rows.slice(1).map((row) => row.split(/ +/)[0])).toEqual([first, second]);
    expect(rows[1]).toMatch(new RegExp(`^${first} +active +all +\\S+ +${r.url}/one$`));

    expect(ndjson.stdout.trimEnd().split("\n").map((line) => JSON.parse(line).id)).toEqual([first, second]);

    expect(limited.stdout.trimEnd().split("\n")).toHaveLength(2);
    expect(limited.stderr).toMatch(/more endpoints/);

    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout).toMatch(new RegExp(`^url: +${r.url}/one$`, "m"));
    expect(get.stdout).not.toMatch(/^secret:/m);
    expect(fromJsonString(GetEndpointResponseSchema, getJson.stdout).endpoint!.id).toBe(first);

    expect(stats.code, stats.stderr).toBe(0);
    expect(stats.stdout).toMatch(/^window: +1h$/m);
    expect(stats.stdout).toMatch(/^circuit: +CLOSED$/m);
  });

  it("update changes only the settings given, through the update mask", async () => {
    const created = await runCli(
      ["endpoints", "create", `${r.url}/before`, "--tenant", "upd", "--event-types", "a.b", "-H", "X-Keep: 1", "--json"],
      env,
    );
    const id = JSON.parse(created.stdout).endpoint.id as string;
    const res = await runCli(
      ["endpoints", "update", id, "--endpoint-url", `${r.url}/after`, "--timeout", "10s", "--disable"],
      env,
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^state: +disabled$/m);
    const { endpoint } = await hookline.admin.getEndpoint({ id });
    expect(endpoint).toMatchObject({
      url: `${r.url}/after`,
      timeoutSeconds: 10,
      disabled: true,
      eventTypes: ["a.b"],
      headers: { "x-keep": "1" },
    });

    const json = await runCli(["endpoints", "update", id, "--enable", "--event-types", "", "--clear-headers", "--json"], env);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).endpoint).not.toHaveProperty("disabled");
    const after = (await hookline.admin.getEndpoint({ id })).endpoint!;
    expect(after).toMatchObject({ disabled: false, eventTypes: [], headers: {}, timeoutSeconds: 10 });

    const nothing = await runCli(["endpoints", "update", id], env);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/give at least one setting/);
  });

  it("rotate-secret returns the new secret and until when the old one signs", async () => {
    const id = await createEndpoint("rotate");
    const before = Date.now();
    const [text, json] = [
      await runCli(["endpoints", "rotate-secret", id, "--grace-period", "1h"], env),
      await runCli(["endpoints", "rotate-secret", id, "--grace-period", "0", "--json"], env),
    ];
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^secret: +whsec_/m);
    const until = Date.parse(/^previous secret signs until: +(\S+)$/m.exec(text.stdout)![1]!);
    expect(until - before).toBeGreaterThan(3_500_000);
    expect(until - before).toBeLessThan(3_700_000);
    // A grace period of 0 retires the old secret at once: no expiry.
    const rotated = fromJsonString(RotateEndpointSecretResponseSchema, json.stdout);
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.previousSecretExpiresAt).toBeUndefined();
  });

  it("test sends a signed hookline.test event; a failing endpoint exits with 3", async () => {
    const ok = await createEndpoint("testing", "/tested");
    const failing = await createEndpoint("testing", "/fail");
    const [delivered, json, failed] = await Promise.all([
      runCli(["endpoints", "test", ok, "--data", '{"hello":"world"}'], env),
      runCli(["endpoints", "test", ok, "--json"], env),
      runCli(["endpoints", "test", failing], env),
    ]);
    expect(delivered.code, delivered.stderr).toBe(0);
    expect(delivered.stdout).toMatch(/^result: +delivered$/m);
    expect(delivered.stdout).toMatch(/^response: +HTTP 200$/m);
    const bodies = r.requests.filter((q) => q.path === "/tested").map((q) => JSON.parse(q.body));
    expect(bodies).toContainEqual(expect.objectContaining({ type: "hookline.test", data: { hello: "world" } }));

    expect(fromJsonString(SendTestEventResponseSchema, json.stdout).attempt!.responseStatus).toBe(200);

    expect(failed.code).toBe(3);
    expect(failed.stdout).toMatch(/^result: +failed$/m);
    expect(failed.stdout).toMatch(/^body: +"down"$/m);
    expect(failed.stderr).toBe(`hookline: the test event to ${failing} failed: HTTP 503\n`);
  });

  it("delete prints what it failed; the endpoint is then NOT_FOUND", async () => {
    const [a, b] = [await createEndpoint("del"), await createEndpoint("del")];
    const [text, json] = await Promise.all([
      runCli(["endpoints", "delete", a], env),
      runCli(["endpoints", "delete", b, "--json"], env),
    ]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toBe(`deleted ${a}; 0 pending deliveries failed\n`);
    expect(json.stdout).toBe("{}\n");
    const gone = await runCli(["endpoints", "get", a], env);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe(`hookline: NOT_FOUND: endpoint ${a} not found\n`);
    expect(gone.stdout).toBe("");
  });
});

describe("errors", () => {
  it("name the field or the option, with exit code 1 for Hookline's refusals and 2 for usage", async () => {
    const [badUrl, badTimeout, missingTenant, unknownCommand, badProtocol] = await Promise.all([
      runCli(["endpoints", "create", "ftp://example.com/hook", "--tenant", "acme"], env),
      runCli(["endpoints", "create", `${r.url}/x`, "--tenant", "acme", "--timeout", "soon"], env),
      runCli(["endpoints", "create", `${r.url}/x`], env),
      runCli(["endpoint", "list"], env),
      runCli(["--protocol", "carrier-pigeon", "endpoints", "list", "--tenant", "acme"], env),
    ]);
    expect(badUrl.code).toBe(1);
    expect(badUrl.stderr).toMatch(/^hookline: INVALID_ARGUMENT: url: /);
    expect(badTimeout.code).toBe(2);
    expect(badTimeout.stderr).toMatch(/option '--timeout <duration>' argument 'soon' is invalid/);
    expect(missingTenant.code).toBe(2);
    expect(missingTenant.stderr).toMatch(/required option '--tenant <id>' not specified/);
    expect(unknownCommand.code).toBe(2);
    expect(unknownCommand.stderr).toMatch(/unknown command 'endpoint'[\s\S]*endpoints/);
    expect(badProtocol.code).toBe(2);
    for (const res of [badUrl, badTimeout, missingTenant, unknownCommand, badProtocol]) {
      expect(res.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it("without the token Hookline wants: UNAUTHENTICATED; a wrong --url: UNAVAILABLE with a hint", async () => {
    const [anonymous, nowhere] = await Promise.all([
      runCli(["endpoints", "list", "--tenant", "acme"], { HOOKLINE_URL: app.url }),
      runCli(["--url", "http://127.0.0.1:1", "endpoints", "list", "--tenant", "acme"], env),
    ]);
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/^hookline: UNAUTHENTICATED: .*\nhookline: pass a token with --token or HOOKLINE_TOKEN\n$/);
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toMatch(/^hookline: UNAVAILABLE: .*ECONNREFUSED/);
    expect(nowhere.stderr).toMatch(/is Hookline running at http:\/\/127\.0\.0\.1:1\?/);
  });

  it("--token, --url and --protocol flags work in place of the environment, over gRPC and gRPC-Web", async () => {
    const id = await createEndpoint("flags");
    const [grpc, grpcWeb] = await Promise.all(
      ["grpc", "grpc-web"].map((protocol) =>
        runCli(["endpoints", "get", id, "--url", app.url, "--token", TOKEN, "--protocol", protocol, "--json"], {}),
      ),
    );
    expect(JSON.parse(grpc!.stdout).endpoint.id).toBe(id);
    expect(JSON.parse(grpcWeb!.stdout).endpoint.id).toBe(id);
  });
});

describe("help", () => {
  it("--help lists the commands and global flags; each command has its own", async () => {
    const [top, endpoints, create, version] = await Promise.all([
      runCli(["--help"], {}),
      runCli(["endpoints", "--help"], {}),
      runCli(["endpoints", "create", "--help"], {}),
      runCli(["--version"], {}),
    ]);
    expect(top.code).toBe(0);
    for (const command of ["serve", "endpoints", "publish", "deliveries", "recover", "watch"]) {
      expect(top.stdout).toMatch(new RegExp(`^  ${command}\\b`, "m"));
    }
    expect(top.stdout).toMatch(/--url <url>.*\n.*env: HOOKLINE_URL/);
    expect(endpoints.code).toBe(0);
    for (const sub of ["create", "list", "get", "update", "delete", "rotate-secret", "test", "stats"]) {
      expect(endpoints.stdout).toMatch(new RegExp(`^  ${sub}\\b`, "m"));
    }
    expect(create.stdout).toMatch(/--retry-schedule <delays>/);
    expect(create.stdout).toMatch(/Global Options:[\s\S]*--json/);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

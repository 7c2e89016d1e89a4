/**
 * The receiver code in docs/receiving-webhooks.md, run as written (only the
 * port changed) against real deliveries, so it cannot rot: each receiver
 * must accept Hookline's signed delivery, print it, and refuse a forgery.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { SignatureScheme } from "../../gen/hookline/v1/endpoint_pb.js";
import { type Receiver, startReceiver } from "../support/receiver.js";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { client } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { freePort } from "../support/free-port.js";
import { startTestHookline, type TestHookline } from "../support/hookline.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
let db: TestDatabase;
let app: TestHookline;
let dir: string;
let doc: string;

beforeAll(async () => {
  db = await createTestDatabase();
  app = await startTestHookline(db.url);
  dir = await mkdtemp(join(tmpdir(), "hookline-snippets-"));
  // The snippets import packages (standardwebhooks) as a user's project would.
  await symlink(join(ROOT, "node_modules"), join(dir, "node_modules"));
  doc = await readFile(join(ROOT, "docs/receiving-webhooks.md"), "utf8");
});

afterAll(async () => {
  await app?.stop();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The code block whose first line names `file`. */
function snippet(file: string): string {
  const blocks = [...doc.matchAll(/```(?:js|python)\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const block = blocks.find((b) => b.split("\n")[0]!.includes(file) || b.includes(`def ${file}(`));
  if (!block) throw new Error(`docs/receiving-webhooks.md has no code block starting with ${file}`);
  return block;
}

async function listening(port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ port, host: "127.0.0.1" }, () => {
        s.end();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const RECEIVERS = [
  { file: "receiver-standardwebhooks.mjs", command: process.execPath, scheme: SignatureScheme.STANDARD_WEBHOOKS },
  { file: "receiver-node-crypto.mjs", command: process.execPath, scheme: SignatureScheme.STANDARD_WEBHOOKS },
  { file: "receiver.py", command: "python3", scheme: SignatureScheme.STANDARD_WEBHOOKS },
  { file: "receiver-github.mjs", command: process.execPath, scheme: SignatureScheme.GITHUB },
];

describe("docs/receiving-webhooks.md", () => {
  it.each(RECEIVERS)("$file verifies a real delivery and refuses a forged one", async ({ file, command, scheme }) => {
    const port = await freePort();
    const path = join(dir, file);
    await writeFile(path, snippet(file).replaceAll("9999", String(port)));
    const admin = client(WebhookAdmin, "connect-http2", app.url);
    const { endpoint } = await admin.createEndpoint({
      tenantId: `docs-${port}`,
      url: `http://127.0.0.1:${port}/hooks`,
      signatureScheme: scheme,
    });
    let child: ChildProcess | undefined;
    try {
      child = spawn(command, [path], { cwd: dir, env: { ...process.env, HOOKLINE_SECRET: endpoint!.secret }, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout!.on("data", (c: Buffer) => {
        out += c.toString();
      });
      child.stderr!.on("data", (c: Buffer) => {
        err += c.toString();
      });
      await listening(port);
      // A forgery: right headers, wrong signature.
      const forged = await fetch(`http://127.0.0.1:${port}/hooks`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "webhook-id": "evt_forged",
          "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
          "webhook-signature": `v1,${Buffer.alloc(32).toString("base64")}`,
        },
        body: '{"type":"x","timestamp":"","data":{}}',
      });
      expect(forged.status).toBe(401);
      const { eventId } = await client(EventIngest, "connect-http2", app.url).publish({
        tenantId: `docs-${port}`,
        eventType: "invoice.paid",
        payload: { case: "payloadJson", value: '{"invoiceId":"inv_42","amount":1999}' },
      });
      await expect.poll(() => out, { timeout: 10_000 }).toContain(eventId);
      // One line: the webhook-id (the event id), the type and the data.
      const lines = out.trim().split("\n");
      expect(lines).toHaveLength(1);
      const [id, type, ...data] = lines[0]!.split(" ");
      expect([id, type, JSON.parse(data.join(" "))]).toEqual([eventId, "invoice.paid", { invoiceId: "inv_42", amount: 1999 }]);
      // (Python's http.server logs each request on stderr; nothing else may appear.)
      expect(err).not.toMatch(/Error|Traceback/);
      // The outcome is written after the receiver has answered: wait for it.
      await expect
        .poll(
          async () =>
            (
              await db.query<{ status: number; last_response_status: number }>(
                "SELECT status, last_response_status FROM deliveries WHERE event_id = $1",
                [eventId],
              )
            )[0],
          { timeout: 10_000 },
        )
        .toEqual({ status: 3, last_response_status: 204 });
    } finally {
      child?.kill();
    }
  });
});

describe("docs/receiving-webhooks.md, GitHub-style in Python", () => {
  it("verify_github_signature accepts a real delivery's header and refuses a changed body", async () => {
    const r: Receiver = await startReceiver();
    try {
      r.reply(() => ({ status: 204 }));
      const admin = client(WebhookAdmin, "connect-http2", app.url);
      const { endpoint } = await admin.createEndpoint({ tenantId: "docs-gh-py", url: `${r.url}/gh`, signatureScheme: SignatureScheme.GITHUB });
      await client(EventIngest, "connect-http2", app.url).publish({
        tenantId: "docs-gh-py",
        eventType: "invoice.paid",
        payload: { case: "payloadJson", value: '{"invoiceId":"inv_42"}' },
      });
      await r.waitFor(1);
      const req = r.requests[0]!;
      const program = `${snippet("verify_github_signature")}
import base64, sys
secret, header, body = sys.argv[1], sys.argv[2], base64.b64decode(sys.argv[3])
print(verify_github_signature(secret, header, body), verify_github_signature(secret, header, body + b" "))
`;
      const { stdout } = await promisify(execFile)("python3", [
        "-c",
        program,
        endpoint!.secret,
        String(req.headers["x-hub-signature-256"]),
        Buffer.from(req.body).toString("base64"),
      ]);
      expect(stdout.trim()).toBe("True False");
    } finally {
      await r.close();
    }
  });
});

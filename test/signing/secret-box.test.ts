/**
 * Endpoint secrets at rest: AES-256-GCM sealing, the key from the
 * environment or the data directory, plaintext secrets sealed at start, and
 * a refusal to start with a key that does not open the stored secrets.
 */
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { dataDirSecretKey, parseSecretKey, SecretBox } from "../../src/signing/secret-box.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { startTestHookline, TEST_SECRET_KEY } from "../support/hookline.js";

describe("SecretBox", () => {
  const box = new SecretBox(Buffer.alloc(32, 1));

  it("seals with a fresh IV each time and opens what it sealed", () => {
    const secret = `whsec_${Buffer.alloc(32, 9).toString("base64")}`;
    const a = box.seal(secret);
    const b = box.seal(secret);
    expect(a).toMatch(/^enc:v1:/);
    expect(a).not.toBe(b);
    expect(a).not.toContain(secret.slice(6));
    expect(box.open(a)).toBe(secret);
    expect(box.open(b)).toBe(secret);
    expect(box.openAll([{ secret: a, expiresAt: "x" }])).toEqual([{ secret, expiresAt: "x" }]);
  });

  it("refuses another key and tampered data, and passes plaintext from before encryption through", () => {
    const sealed = box.seal("whsec_abc");
    expect(() => new SecretBox(Buffer.alloc(32, 2)).open(sealed)).toThrow();
    const raw = Buffer.from(sealed.slice(7), "base64");
    raw[raw.length - 1]! ^= 1;
    expect(() => box.open(`enc:v1:${raw.toString("base64")}`)).toThrow();
    expect(box.open("whsec_plain")).toBe("whsec_plain");
  });

  it("is required with DATABASE_URL (only the embedded setup keeps its own)", () => {
    expect(() => loadConfig({ DATABASE_URL: "postgres://x/y" })).toThrow(/HOOKLINE_SECRET_KEY: required with DATABASE_URL/);
    expect(() => loadConfig({ DATABASE_URL: "postgres://x/y", HOOKLINE_SECRET_KEY: "nope" })).toThrow(/32 bytes/);
    expect(loadConfig({}).secretKey).toBeUndefined();
  });

  it("parses keys as hex or base64, 32 bytes only", () => {
    expect(parseSecretKey("ab".repeat(32))).toHaveLength(32);
    expect(parseSecretKey(Buffer.alloc(32, 3).toString("base64"))).toEqual(Buffer.alloc(32, 3));
    expect(() => parseSecretKey("short")).toThrow(/32 bytes/);
  });

  it("makes the data directory's key once, readable by its owner only, and keeps it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "hookline-key-"));
    try {
      const first = await dataDirSecretKey(dir);
      const again = await dataDirSecretKey(dir);
      expect(again).toEqual(first);
      expect((await stat(join(dir, "secret.key"))).mode & 0o777).toBe(0o600);
      expect((await readFile(join(dir, "secret.key"), "utf8")).trim()).toBe(first.toString("hex"));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("a Hookline process", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it("seals plaintext secrets when it starts, and refuses a key that does not open them", async () => {
    await db.query(
      `INSERT INTO endpoints (id, tenant_id, url, secrets) VALUES ('ep_old', 't', 'http://127.0.0.1:9/', '[{"secret":"whsec_${Buffer.alloc(32, 4).toString("base64")}","expiresAt":null}]')`,
    );
    const app = await startTestHookline(db.url);
    await app.stop();
    const [row] = await db.query<{ secrets: { secret: string }[] }>("SELECT secrets FROM endpoints WHERE id = 'ep_old'");
    expect(row!.secrets[0]!.secret).toMatch(/^enc:v1:/);
    expect(new SecretBox(parseSecretKey(TEST_SECRET_KEY)).open(row!.secrets[0]!.secret)).toBe(`whsec_${Buffer.alloc(32, 4).toString("base64")}`);
    await expect(startTestHookline(db.url, { HOOKLINE_SECRET_KEY: "ab".repeat(32) })).rejects.toThrow(/does not open the endpoint secrets/);
  });
});

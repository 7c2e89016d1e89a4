import { createHmac } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { prepareHeaders } from "../../src/delivery/dispatch.js";
import { ValidationError } from "../../src/domain/errors.js";
import { checkSecret, generateSecret } from "../../src/signing/secrets.js";
import { signatureHeaders } from "../../src/signing/sign.js";

const body = '{"type":"a.b","timestamp":"2026-11-23T10:00:00.000Z","data":{"x":1}}';

describe("Standard Webhooks signatures", () => {
  it("verify with the standardwebhooks package", () => {
    const secret = generateSecret();
    const now = Math.floor(Date.now() / 1000);
    const headers = signatureHeaders("standard-webhooks", [secret], "evt_1", now, body);
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it("carry one entry per active secret, each verifying on its own", () => {
    const current = generateSecret();
    const previous = generateSecret();
    const now = Math.floor(Date.now() / 1000);
    const headers = signatureHeaders("standard-webhooks", [current, previous], "evt_2", now, body);
    expect(headers["webhook-signature"]!.split(" ")).toHaveLength(2);
    expect(() => new Webhook(current).verify(body, headers)).not.toThrow();
    expect(() => new Webhook(previous).verify(body, headers)).not.toThrow();
    expect(() => new Webhook(generateSecret()).verify(body, headers)).toThrow();
  });

  it("fail verification when one byte of the body changes", () => {
    const secret = generateSecret();
    const headers = signatureHeaders("standard-webhooks", [secret], "evt_3", Math.floor(Date.now() / 1000), body);
    expect(() => new Webhook(secret).verify(body.replace('"x":1', '"x":2'), headers)).toThrow();
  });
});

describe("GitHub-style signatures", () => {
  it("are sha256=<hex HMAC of the raw body> keyed with the secret's text, as GitHub does", () => {
    const secret = generateSecret();
    const headers = signatureHeaders("github", [secret], "evt_4", 1_700_000_000, body);
    expect(headers["x-hub-signature-256"]).toBe(`sha256=${createHmac("sha256", secret).update(body).digest("hex")}`);
    expect(headers["webhook-signature"]).toBeUndefined();
    expect(headers["webhook-id"]).toBe("evt_4");
  });
});

describe("delivery headers", () => {
  it("let custom headers through but never over the signature or content headers", () => {
    const secret = generateSecret();
    const headers = prepareHeaders(
      {
        eventId: "evt_5",
        body,
        headers: { "X-Custom": "1", "Content-Type": "text/plain" },
        secrets: [
          { secret, expiresAt: null },
          { secret: generateSecret(), expiresAt: new Date(Date.now() - 1000).toISOString() },
        ],
        signatureScheme: "standard-webhooks",
      },
      new Date(),
    );
    expect(headers["x-custom"]).toBe("1");
    expect(headers["content-type"]).toBe("application/json");
    // The expired secret no longer signs.
    expect(headers["webhook-signature"]!.split(" ")).toHaveLength(1);
    expect(() => new Webhook(secret).verify(body, headers)).not.toThrow();
  });
});

describe("secrets", () => {
  it("are generated as whsec_ + base64 of 32 random bytes", () => {
    const a = generateSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(a.slice(6), "base64")).toHaveLength(32);
    expect(generateSecret()).not.toBe(a);
  });

  it("given by callers must be whsec_ + base64 of 24-64 bytes", () => {
    expect(checkSecret(`whsec_${Buffer.alloc(24).toString("base64")}`, "secret")).toMatch(/^whsec_/);
    for (const bad of ["", "whsec_", "whsec_!!!!", `whsec_${Buffer.alloc(65).toString("base64")}`, "sk_abc"]) {
      expect(() => checkSecret(bad, "secret")).toThrow(ValidationError);
    }
  });
});

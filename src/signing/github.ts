/**
 * GitHub-style signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
 * the raw body>`. There is no timestamp in the signed content; receivers that
 * need replay protection should prefer Standard Webhooks.
 */
import { createHmac } from "node:crypto";

/** Returns the `X-Hub-Signature-256` header value for `body`. */
export function githubSignature(key: Buffer, body: string): string {
  return `sha256=${createHmac("sha256", key).update(body).digest("hex")}`;
}

/**
 * GitHub-style signatures: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
 * the raw body>`. There is no timestamp in the signed content; receivers that
 * need replay protection should prefer Standard Webhooks.
 */
import { createHmac } from "node:crypto";

/**
 * Returns the `X-Hub-Signature-256` header value for `body`. The key is the
 * secret's text (`whsec_...` included), as GitHub and the GitHub helpers of
 * webhook libraries use it, so receivers can use those helpers unchanged.
 */
export function githubSignature(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

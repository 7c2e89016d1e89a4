/**
 * Standard Webhooks v1 signatures (https://www.standardwebhooks.com):
 * `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")), one entry per
 * active secret, space-separated, in the `webhook-signature` header.
 */
import { createHmac } from "node:crypto";

/**
 * Signs one message with every key given (the current secret first, then any
 * still in their rotation grace period) and returns the header value.
 */
export function standardWebhooksSignature(
  keys: readonly Buffer[],
  messageId: string,
  timestampSeconds: number,
  body: string,
): string {
  const content = `${messageId}.${timestampSeconds}.${body}`;
  return keys.map((key) => `v1,${createHmac("sha256", key).update(content).digest("base64")}`).join(" ");
}

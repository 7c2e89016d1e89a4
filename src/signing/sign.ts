/**
 * The signature headers of one delivery attempt, by scheme.
 */
import { githubSignature } from "./github.js";
import { secretKey } from "./secrets.js";
import { standardWebhooksSignature } from "./standard-webhooks.js";

/** How an endpoint's deliveries are signed. */
export type SignatureSchemeName = "standard-webhooks" | "github";

/**
 * Returns the headers that identify and sign one attempt. `secrets` lists the
 * endpoint's active secrets, current first. The Standard Webhooks id and
 * timestamp headers are sent with either scheme, so receivers can dedupe on
 * `webhook-id` whichever signature they check.
 */
export function signatureHeaders(
  scheme: SignatureSchemeName,
  secrets: readonly string[],
  messageId: string,
  timestampSeconds: number,
  body: string,
): Record<string, string> {
  const headers: Record<string, string> = {
    "webhook-id": messageId,
    "webhook-timestamp": String(timestampSeconds),
  };
  if (scheme === "github") {
    // One header, one signature: the current secret signs.
    headers["x-hub-signature-256"] = githubSignature(secrets[0]!, body);
  } else {
    headers["webhook-signature"] = standardWebhooksSignature(secrets.map(secretKey), messageId, timestampSeconds, body);
  }
  return headers;
}

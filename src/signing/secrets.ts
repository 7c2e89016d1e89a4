/**
 * Endpoint signing secrets: `whsec_` + base64 of 24-64 random bytes, as the
 * Standard Webhooks spec describes. The HMAC key is the decoded bytes.
 */
import { randomBytes } from "node:crypto";
import { ValidationError } from "../domain/errors.js";

const PREFIX = "whsec_";
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

/** Makes a new secret from 32 random bytes. */
export function generateSecret(): string {
  return PREFIX + randomBytes(32).toString("base64");
}

/**
 * Checks a caller-given secret and returns it unchanged.
 * @throws ValidationError naming `field` when it is not `whsec_` + base64 of 24-64 bytes.
 */
export function checkSecret(secret: string, field: string): string {
  if (!secret.startsWith(PREFIX)) {
    throw new ValidationError(field, 'must start with "whsec_" followed by base64');
  }
  const encoded = secret.slice(PREFIX.length);
  if (!BASE64_RE.test(encoded) || encoded.length % 4 !== 0) {
    throw new ValidationError(field, 'the part after "whsec_" must be base64');
  }
  const length = Buffer.from(encoded, "base64").length;
  if (length < 24 || length > 64) {
    throw new ValidationError(field, `must encode 24 to 64 bytes, got ${length}`);
  }
  return secret;
}

/** The HMAC key of a secret: its base64-decoded part. */
export function secretKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, "base64");
}

/**
 * The process logger: structured JSON lines (pino). Never log secrets or
 * full payloads; log ids.
 */
import { pino, type Logger } from "pino";

/** Makes the root logger at `level`. */
export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: "hookline" },
    redact: { paths: ["secret", "secrets", "*.secret", "*.secrets", "headers.authorization"], censor: "[redacted]" },
  });
}

/**
 * The process logger: structured JSON lines (pino), or coloured lines for
 * people when stdout is a terminal. Never log secrets or full payloads; log
 * ids.
 */
import { pino, type Logger } from "pino";
import pretty from "pino-pretty";
import type { LogFormat } from "./config.js";

/**
 * Makes the root logger at `level`. "auto" writes JSON lines unless stdout
 * is a terminal, where people read it.
 */
export function createLogger(level: string, format: LogFormat = "auto", stdout: NodeJS.WriteStream = process.stdout): Logger {
  const options = {
    level,
    base: { service: "hookline" },
    redact: { paths: ["secret", "secrets", "*.secret", "*.secrets", "headers.authorization"], censor: "[redacted]" },
  };
  if (format === "json" || (format === "auto" && !stdout.isTTY)) {
    // pino's own destination for the real stdout is faster than the stream.
    return stdout === process.stdout ? pino(options) : pino(options, stdout);
  }
  // Synchronous: a line is on the terminal before the process can exit.
  return pino(
    options,
    pretty({ destination: stdout, sync: true, colorize: stdout.isTTY === true, translateTime: "SYS:HH:MM:ss.l", ignore: "service,pid,hostname" }),
  );
}

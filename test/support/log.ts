/**
 * A real pino logger whose lines the test reads back, parsed, for tests of
 * what Hookline logs (and of code that reports through its log).
 */
import { Writable } from "node:stream";
import { expect } from "vitest";
import { type Logger, pino } from "pino";

/** One logged line, parsed. */
export type LogLine = Record<string, unknown> & { level: number; msg: string };

/** pino's numeric levels. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** What {@link captureLog} makes. */
export interface CapturedLog {
  /** Logs at `level` and above into `lines`. */
  log: Logger;
  /** Every line so far, parsed. */
  lines: LogLine[];
  /** Every line so far, as written. */
  raw: string[];
  /** Resolves with the first line `which` selects, once it has been logged. */
  waitFor(which: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

/** A logger at `level` that keeps its lines for the test. */
export function captureLog(level: keyof typeof LEVEL = "debug"): CapturedLog {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const text of String(chunk).split("\n")) {
        if (text === "") continue;
        raw.push(text);
        lines.push(JSON.parse(text) as LogLine);
      }
      done();
    },
  });
  return {
    log: pino({ level }, sink),
    lines,
    raw,
    async waitFor(which, timeoutMs = 10_000) {
      await expect.poll(() => lines.some(which), { timeout: timeoutMs, interval: 5 }).toBe(true);
      return lines.find(which)!;
    },
  };
}

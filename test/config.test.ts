import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_RETRY_SCHEDULE_MS, loadConfig, parseDuration } from "../src/config.js";
import { VERSION } from "../src/version.js";

describe("configuration", () => {
  it("has documented defaults", () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      host: "127.0.0.1",
      port: 7070,
      databaseUrl: undefined,
      requestTimeoutMs: 15_000,
      testEventTimeoutMs: 30_000,
      testEventConcurrency: 10,
      retryPolicy: { kind: "schedule", delaysMs: DEFAULT_RETRY_SCHEDULE_MS },
      retryJitter: 0.2,
      maxPayloadBytes: 262_144,
    });
    expect(c.dataDir.endsWith(".hookline")).toBe(true);
  });

  it("documents every variable it reads in docs/configuration.md", () => {
    const source = readFileSync(new URL("../src/config.ts", import.meta.url), "utf8");
    const names = new Set([...source.matchAll(/"((?:HOOKLINE_|DATABASE_)[A-Z_]+)"/g)].map((m) => m[1]!));
    names.add("DATABASE_URL");
    const doc = readFileSync(new URL("../docs/configuration.md", import.meta.url), "utf8");
    const missing = [...names].filter((n) => !doc.includes(`\`${n}\``));
    expect(missing).toEqual([]);
  });

  it("parses durations and retry policies", () => {
    expect(parseDuration("250ms")).toBe(250);
    expect(parseDuration("5s")).toBe(5_000);
    expect(parseDuration("1.5m")).toBe(90_000);
    expect(parseDuration("2h")).toBe(7_200_000);
    expect(parseDuration("1d")).toBe(86_400_000);
    expect(parseDuration("40")).toBe(40);
    expect(loadConfig({ HOOKLINE_RETRY_SCHEDULE: "1s, 2s" }).retryPolicy).toEqual({ kind: "schedule", delaysMs: [1_000, 2_000] });
    expect(loadConfig({ HOOKLINE_RETRY_SCHEDULE: "none" }).retryPolicy).toEqual({ kind: "schedule", delaysMs: [] });
    expect(loadConfig({ HOOKLINE_RETRY_SCHEDULE: "" }).retryPolicy.kind).toBe("schedule");
    expect(loadConfig({ HOOKLINE_RETRY_SCHEDULE: "" }).retryPolicy).toEqual(loadConfig({}).retryPolicy);
    expect(loadConfig({ HOOKLINE_RETRY_EXPONENTIAL: "2s,1h,5" }).retryPolicy).toEqual({
      kind: "exponential",
      baseMs: 2_000,
      capMs: 3_600_000,
      maxAttempts: 5,
    });
  });

  it("rejects bad values with the variable's name", () => {
    expect(() => loadConfig({ HOOKLINE_PORT: "http" })).toThrow(/HOOKLINE_PORT=http/);
    expect(() => loadConfig({ HOOKLINE_PORT: "70000" })).toThrow(ConfigError);
    expect(() => loadConfig({ HOOKLINE_SCHEDULER: "maybe" })).toThrow(/HOOKLINE_SCHEDULER/);
    expect(() => loadConfig({ HOOKLINE_REQUEST_TIMEOUT: "soon" })).toThrow(/HOOKLINE_REQUEST_TIMEOUT=soon/);
    expect(() => loadConfig({ HOOKLINE_RETRY_EXPONENTIAL: "2s,1h" })).toThrow(/base,cap,max_attempts/);
    expect(() => loadConfig({ HOOKLINE_RETRY_SCHEDULE: "1s", HOOKLINE_RETRY_EXPONENTIAL: "1s,2s,3" })).toThrow(/not both/);
    expect(() => loadConfig({ HOOKLINE_RETRY_SCHEDULE: "1s,soon" })).toThrow(/HOOKLINE_RETRY_SCHEDULE=soon/);
    expect(() => loadConfig({ HOOKLINE_RETRY_EXPONENTIAL: "10s,1s,3" })).toThrow(/HOOKLINE_RETRY_EXPONENTIAL \(cap\)=1s: must be from 10s/);
    expect(() => loadConfig({ HOOKLINE_POLL_INTERVAL: "0" })).toThrow(/HOOKLINE_POLL_INTERVAL=0: must be from 10ms to 1h/);
    expect(() => loadConfig({ HOOKLINE_REQUEST_TIMEOUT: "301s" })).toThrow(/HOOKLINE_REQUEST_TIMEOUT/);
    expect(() => loadConfig({ HOOKLINE_LOG_LEVEL: "loud" })).toThrow(/HOOKLINE_LOG_LEVEL=loud: expected one of/);
    expect(() => loadConfig({ HOOKLINE_LOG_FORMAT: "xml" })).toThrow(/HOOKLINE_LOG_FORMAT=xml: expected one of auto, json, pretty/);
    expect(loadConfig({ HOOKLINE_LOG_FORMAT: "pretty" }).logFormat).toBe("pretty");
    expect(loadConfig({}).logFormat).toBe("auto");
    expect(loadConfig({}).dbStatementTimeoutMs).toBe(60_000);
    expect(loadConfig({ HOOKLINE_DB_STATEMENT_TIMEOUT: "0" }).dbStatementTimeoutMs).toBe(0);
    expect(loadConfig({ HOOKLINE_DB_STATEMENT_TIMEOUT: "5s" }).dbStatementTimeoutMs).toBe(5_000);
    expect(() => loadConfig({ HOOKLINE_DB_STATEMENT_TIMEOUT: "10ms" })).toThrow(/HOOKLINE_DB_STATEMENT_TIMEOUT=10ms: must be from 100ms to 1h/);
  });

  it("keeps the user-agent version equal to package.json", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    expect(VERSION).toBe(pkg.version);
  });
});

/**
 * Starts a real Hookline (API server on a free port on 127.0.0.1 and the
 * delivery scheduler) in the test process, on the test file's database, with
 * short retry delays set through configuration.
 */
import { type Logger, pino } from "pino";
import { type Hookline, startHookline } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import type { TestDatabase } from "./database.js";
import { madeBeforeAll } from "./made-before-all.js";

/** The key test processes encrypt endpoint secrets with (32 bytes, hex). */
export const TEST_SECRET_KEY = "5e".repeat(32);

/** Environment overrides on top of the test defaults. */
export type EnvOverrides = Record<string, string>;

/** The configuration the tests run with, as environment variables. */
export function testEnv(databaseUrl: string, overrides: EnvOverrides = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    HOOKLINE_HOST: "127.0.0.1",
    HOOKLINE_PORT: "0",
    HOOKLINE_DB_POOL_SIZE: "5",
    HOOKLINE_POLL_INTERVAL: "200ms",
    HOOKLINE_RETRY_SCHEDULE: "50ms,50ms,50ms",
    HOOKLINE_REQUEST_TIMEOUT: "5s",
    HOOKLINE_SHUTDOWN_TIMEOUT: "2s",
    HOOKLINE_LOG_LEVEL: process.env.HOOKLINE_TEST_LOG_LEVEL ?? "silent",
    // Receivers run on 127.0.0.1, which the SSRF guard blocks by default.
    HOOKLINE_ALLOWED_CIDRS: "127.0.0.0/8",
    // Endpoint secrets are encrypted at rest; with DATABASE_URL a key is required.
    HOOKLINE_SECRET_KEY: TEST_SECRET_KEY,
    ...overrides,
  };
}

/** A Hookline started in the test process, with its API on. */
export type TestHookline = Hookline & { url: string };

/** Starts Hookline in-process; stop it with `app.stop()`. `log` replaces the quiet default logger. */
export async function startTestHookline(databaseUrl: string, overrides: EnvOverrides = {}, log?: Logger): Promise<TestHookline> {
  const config = loadConfig(testEnv(databaseUrl, overrides));
  const app = await startHookline(config, log ?? pino({ level: config.logLevel }));
  if (!app.url) throw new Error("the API is disabled");
  return app as TestHookline;
}

/**
 * A Hookline on `db` (see startTestHookline; any database with a `url`),
 * started before the tests of the file (or describe block) this is called
 * in and stopped after them.
 */
export function useTestHookline(db: Pick<TestDatabase, "url">, overrides: EnvOverrides = {}, log?: Logger): TestHookline {
  return madeBeforeAll(
    () => startTestHookline(db.url, overrides, log),
    (app) => app.stop(),
  );
}

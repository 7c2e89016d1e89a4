/**
 * The Hookline server process: configuration from the environment, then the
 * whole process (see app.ts), stopped gracefully on SIGTERM or SIGINT. Run by
 * `npm start` (src/main.ts) and by `hookline serve`.
 */
import { startHookline } from "../app.js";
import { type Config, ConfigError, loadConfig } from "../config.js";
import { createLogger } from "../log.js";
import { EmbeddedPostgresError } from "../store/embedded-postgres.js";

/**
 * Starts Hookline as configured by the environment and installs the signal
 * handlers; resolves once it serves. A configuration error exits with 2; the
 * first SIGTERM or SIGINT stops gracefully (exit 0, or 1 if the shutdown
 * fails), a second one exits at once with 1.
 */
export async function runServer(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`hookline: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel, config.logFormat);
  const app = await startHookline(config, log);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    log.info({ signal }, "shutting down");
    app.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

/**
 * Writes why the server could not start and exits with 1: one line for a
 * problem the operator fixes (the message says how), the stack for others.
 */
export function failedToStart(err: unknown): never {
  const text = err instanceof EmbeddedPostgresError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  process.stderr.write(`hookline: failed to start: ${text}\n`);
  process.exit(1);
}

/**
 * Watches whether the database answers, so health checks can say
 * NOT_SERVING while it does not (load balancers then route elsewhere).
 */
import type { Sql } from "./sql.js";

/** A running database probe; stop it with `stop()`. */
export interface DatabaseProbe {
  /** Whether the last probe succeeded. */
  readonly healthy: boolean;
  stop(): void;
}

/**
 * Runs `SELECT 1` every `intervalMs` (bounded by `timeoutMs`) and calls
 * `onChange` when the answer flips between reachable and not.
 */
export function probeDatabase(
  sql: Sql,
  onChange: (healthy: boolean, err?: unknown) => void,
  intervalMs = 2_000,
  timeoutMs = 2_000,
): DatabaseProbe {
  let healthy = true;
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        sql.query("SELECT 1"),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      if (!healthy) {
        healthy = true;
        onChange(true);
      }
    } catch (err) {
      if (healthy) {
        healthy = false;
        onChange(false, err);
      }
    } finally {
      clearTimeout(timer);
      running = false;
    }
  };
  const interval = setInterval(() => void tick(), intervalMs);
  interval.unref();
  return {
    get healthy() {
      return healthy;
    },
    stop: () => clearInterval(interval),
  };
}

/**
 * Streams opened with an API key end when the key is revoked, on every
 * process. A call is authenticated once, when it starts; a stream can last
 * for days, so each one opened with an API key is tracked here with an
 * AbortSignal that aborts (reason: UnauthenticatedError) once its key stops
 * being valid: revoked, deleted, or its tenant or scope changed, by any
 * process or by hand in SQL.
 *
 * Two ways bring the news, as NOTIFY alone can be missed (it is not
 * delivered to a listener that is reconnecting):
 * - the triggers on `api_keys` NOTIFY `hookline_api_keys` with the key's id
 *   (migration Migration20261207050000_api_key_revocations), which this
 *   process LISTENs to from its first tracked stream on. They notify only
 *   keys whose streams must end, so the key's streams end at once, without
 *   waiting for a pooled connection to look it up: a few milliseconds;
 * - every RECHECK_MS while streams are tracked, one query checks all their
 *   keys, as does each (re)connection of the listener.
 */
import type { Logger } from "pino";
import { API_KEYS_CHANNEL, NotifyListener } from "../store/notify-listener.js";
import { validApiKeys } from "../store/sql/api-keys.js";
import type { Sql } from "../store/sql.js";
import { type Principal, SCOPE } from "./auth.js";
import { UnauthenticatedError } from "./errors.js";

/**
 * How often the keys of open streams are checked besides notifications: a
 * revocation whose notification was missed still ends its streams within a
 * second. One indexed query for all of them, only while there are some.
 */
const RECHECK_MS = 500;

/** One tracked stream: aborts when its key is revoked. */
export interface KeyStream {
  readonly signal: AbortSignal;
  /** The stream ended: stop tracking it. */
  release(): void;
}

/** Options of {@link KeyRevocations}. */
export interface KeyRevocationsOptions {
  sql: Sql;
  /** URL for the LISTEN connection. */
  databaseUrl: string;
  log: Logger;
}

function revokedError(id: string): UnauthenticatedError {
  return new UnauthenticatedError(`the API key ${id} was revoked during the call`);
}

interface Tracked {
  caller: Principal;
  controller: AbortController;
}

/** The streams open here with API keys; see the module comment. */
export class KeyRevocations {
  /** By key id. */
  private readonly open = new Map<string, Set<Tracked>>();
  private listener: NotifyListener | undefined;
  /** The listener's first connection, awaited before stopping it. */
  private listening: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  /** Check again once the running check ends. */
  private checkAgain = false;
  private closed = false;

  constructor(private readonly options: KeyRevocationsOptions) {}

  /** Streams tracked now. */
  get size(): number {
    let n = 0;
    for (const streams of this.open.values()) n += streams.size;
    return n;
  }

  /** Tracks a stream of `caller`, who authenticated with an API key (`caller.keyId`). */
  track(caller: Principal): KeyStream {
    const keyId = caller.keyId;
    if (keyId === undefined) throw new Error("only streams of API keys are tracked");
    const tracked: Tracked = { caller, controller: new AbortController() };
    let streams = this.open.get(keyId);
    if (!streams) {
      streams = new Set();
      this.open.set(keyId, streams);
    }
    streams.add(tracked);
    this.start();
    let released = false;
    return {
      signal: tracked.controller.signal,
      release: () => {
        if (released) return;
        released = true;
        const set = this.open.get(keyId);
        set?.delete(tracked);
        if (set?.size === 0) this.open.delete(keyId);
        if (this.open.size === 0) this.stopTimer();
      },
    };
  }

  /** Stops listening and checking (streams still tracked are left as they are). */
  async close(): Promise<void> {
    this.closed = true;
    this.stopTimer();
    await this.listening;
    await this.listener?.stop();
  }

  private start(): void {
    if (this.closed) return;
    if (!this.timer) {
      this.timer = setInterval(() => this.check(), RECHECK_MS);
      this.timer.unref();
    }
    if (!this.listener) {
      // A key id: it is no longer valid. Nothing, after a (re)connection: check them all.
      this.listener = new NotifyListener(
        this.options.databaseUrl,
        API_KEYS_CHANNEL,
        (id) => (id === undefined ? this.check() : this.revoked(id)),
        this.options.log,
      );
      this.listening = this.listener.start();
    }
  }

  /** Key `id` is no longer valid: its streams end. */
  private revoked(id: string): void {
    for (const tracked of this.open.get(id) ?? []) tracked.controller.abort(revokedError(id));
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Checks the keys of every stream tracked here (one more time after the running check, if one runs). */
  private check(): void {
    if (this.open.size === 0) return;
    if (this.checking) {
      this.checkAgain = true;
      return;
    }
    this.checking = true;
    void this.run([...this.open.keys()]);
  }

  private async run(ids: string[]): Promise<void> {
    try {
      const valid = new Map((await validApiKeys(this.options.sql, ids)).map((k) => [k.id, k]));
      for (const id of ids) {
        const key = valid.get(id);
        for (const tracked of this.open.get(id) ?? []) {
          const { caller } = tracked;
          const same = key !== undefined && key.tenantId === caller.tenantId && key.scope === SCOPE[caller.scope];
          if (!same) tracked.controller.abort(revokedError(id));
        }
      }
    } catch (err) {
      this.options.log.warn({ err }, "checking the API keys of open streams failed; retrying at the next check");
    } finally {
      this.checking = false;
      if (this.checkAgain) {
        this.checkAgain = false;
        this.check();
      }
    }
  }
}

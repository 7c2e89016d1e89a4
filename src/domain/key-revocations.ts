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
 *   process LISTENs to from its first tracked stream on: a few milliseconds;
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
  /** Key ids to check once the running check ends (undefined: all). */
  private pending: Set<string> | undefined | null = null;
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
      this.timer = setInterval(() => this.check(undefined), RECHECK_MS);
      this.timer.unref();
    }
    if (!this.listener) {
      // A key id, or nothing after a (re)connection: then check them all.
      this.listener = new NotifyListener(this.options.databaseUrl, API_KEYS_CHANNEL, (id) => this.check(id), this.options.log);
      this.listening = this.listener.start();
    }
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Checks key `id` (if tracked here), or every tracked key when undefined. */
  private check(id: string | undefined): void {
    if (id !== undefined && !this.open.has(id)) return;
    if (this.open.size === 0) return;
    if (this.checking) {
      // Folded into one more check after the running one.
      if (id === undefined || this.pending === undefined) {
        this.pending = undefined;
      } else {
        this.pending ??= new Set();
        this.pending.add(id);
      }
      return;
    }
    this.checking = true;
    void this.run(id === undefined ? [...this.open.keys()] : [id]);
  }

  private async run(ids: string[]): Promise<void> {
    try {
      const valid = new Map((await validApiKeys(this.options.sql, ids)).map((k) => [k.id, k]));
      for (const id of ids) {
        const key = valid.get(id);
        for (const tracked of this.open.get(id) ?? []) {
          const { caller } = tracked;
          const same = key !== undefined && key.tenantId === caller.tenantId && key.scope === SCOPE[caller.scope];
          if (!same) tracked.controller.abort(new UnauthenticatedError(`the API key ${id} was revoked during the call`));
        }
      }
    } catch (err) {
      this.options.log.warn({ err }, "checking the API keys of open streams failed; retrying at the next check");
    } finally {
      this.checking = false;
      const next = this.pending;
      this.pending = null;
      if (next === undefined) this.check(undefined);
      else if (next !== null) for (const id of next) this.check(id);
    }
  }
}

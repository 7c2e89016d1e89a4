/**
 * LISTEN on one channel on a dedicated connection, so a process wakes at
 * once when another commits work for it instead of at its next poll:
 * - `hookline_due`: the trigger on `deliveries` notifies on every commit that
 *   creates deliveries, in any Hookline process; the scheduler listens. Its
 *   payload is the publishing connection's application_name, and a
 *   scheduler skips its own process's (it took those deliveries by id).
 * - `hookline_updates`: the trigger on `delivery_updates` notifies on every
 *   commit that logs status changes; the status stream listens.
 * - `hookline_api_keys`: the triggers on `api_keys` notify the id of each key
 *   revoked, deleted or changed; processes with streams open by API keys
 *   listen (domain/key-revocations.ts).
 * Reconnects by itself; while disconnected the pollers keep things going.
 */
import pg from "pg";
import type { Logger } from "pino";

/** The channel the deliveries trigger notifies. */
export const DUE_CHANNEL = "hookline_due";
/** The channel the status log trigger notifies. */
export const UPDATES_CHANNEL = "hookline_updates";
/** The channel the api_keys triggers notify, with the key's id. */
export const API_KEYS_CHANNEL = "hookline_api_keys";

/** How long stop() waits for the connection to close (see stop). A live server answers in milliseconds. */
const END_WAIT_MS = 1_000;

/**
 * Keeps a LISTEN connection open and calls `onNotify` with each
 * notification's payload, and without one after each (re)connection: what
 * was notified while not listening is missed.
 */
export class NotifyListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly onNotify: (payload?: string) => void,
    private readonly log: Logger,
    /** Skip notifications with this payload (this process's application_name). */
    private readonly own?: string,
  ) {}

  /** Connects and listens; resolves once listening (or after a failed first try, retrying in the background). */
  async start(): Promise<void> {
    await this.connect();
  }

  /**
   * Closes the connection and stops reconnecting. Waits up to
   * END_WAIT_MS for the server to see the connection closed: one that no
   * longer answers (a network that drops packets, a hung server) never
   * does, and a stop must not wait for it.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      client.end().catch(() => {}),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, END_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.url, application_name: "hookline-listener" });
    client.on("notification", (msg) => {
      if (this.own === undefined || msg.payload !== this.own) this.onNotify(msg.payload);
    });
    client.on("error", (err) => this.lost(client, err));
    client.on("end", () => this.lost(client, new Error("connection ended")));
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
      this.client = client;
      // Anything committed while we were not listening is there now.
      this.onNotify();
    } catch (err) {
      await client.end().catch(() => {});
      this.lost(client, err);
    }
  }

  private lost(client: pg.Client, err: unknown): void {
    if (this.stopped || (this.client !== undefined && this.client !== client)) return;
    this.client = undefined;
    if (this.retryTimer) return;
    this.log.warn({ err, channel: this.channel }, "wake-up connection lost; polling until it is back");
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, 1_000);
    this.retryTimer.unref();
  }
}

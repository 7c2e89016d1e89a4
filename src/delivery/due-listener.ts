/**
 * LISTEN for `hookline_due` on a dedicated connection: the trigger on
 * `deliveries` notifies on every commit that creates deliveries, in any
 * Hookline process, and the scheduler wakes at once instead of at its next
 * poll. Reconnects by itself; while disconnected the poll keeps things going.
 * A notification carries the publishing connection's application_name; those
 * of this process's own connections are skipped (its scheduler took them).
 */
import pg from "pg";
import type { Logger } from "pino";

/** The channel the deliveries trigger notifies. */
export const DUE_CHANNEL = "hookline_due";

/** Keeps a LISTEN connection open and calls `onNotify` for each notification. */
export class DueListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly onNotify: () => void,
    private readonly log: Logger,
    /** The application_name of this process's own connections. */
    private readonly own?: string,
  ) {}

  /** Connects and listens; resolves once listening (or after a failed first try, retrying in the background). */
  async start(): Promise<void> {
    await this.connect();
  }

  /** Closes the connection and stops reconnecting. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({ connectionString: this.url, application_name: "hookline-listener" });
    client.on("notification", (msg) => {
      if (this.own === undefined || msg.payload !== this.own) this.onNotify();
    });
    client.on("error", (err) => this.lost(client, err));
    client.on("end", () => this.lost(client, new Error("connection ended")));
    try {
      await client.connect();
      await client.query(`LISTEN ${DUE_CHANNEL}`);
      this.client = client;
      // Anything published while we were not listening is due now.
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
    this.log.warn({ err }, "delivery wake-up connection lost; polling until it is back");
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, 1_000);
    this.retryTimer.unref();
  }
}

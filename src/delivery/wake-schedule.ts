/**
 * When the scheduler looks for work: every source of wake-ups of one
 * process, in one place, each calling `wake` (the scheduler's nudge).
 *
 * Fastest first: a LISTEN notification of `hookline_due` from any other
 * process's publish (this process's own are skipped: their deliveries are
 * leased or taken at once); {@link WakeSchedule.at}, moments this process
 * knows work becomes due (a retry it scheduled, a circuit's cool-down, the
 * next rate-limit token, a claim's backoff), with one timer armed for the
 * earliest; {@link WakeSchedule.soon}, attempts finishing (their capacity is
 * free again); and the poll, only the fallback that catches retries
 * scheduled by other processes and leases of dead ones.
 *
 * Modes: constructed (nothing armed), started (listening, polling, timers
 * armed), stopped (nothing armed again, moments still remembered but never
 * armed).
 */
import type { Logger } from "pino";
import { DUE_CHANNEL, NotifyListener } from "../store/notify-listener.js";

/** How late a wake-up timer fires after its moment (see arm). */
const WAKE_LATE_MS = 2;
/** Wake-up moments remembered at most (see at). */
const MAX_WAKE_TIMES = 10_000;
/**
 * The longest delay a Node timer holds (2^31 - 1 ms, about 24.8 days): a
 * longer one fires at once, with a TimeoutOverflowWarning. Wake-ups are
 * clamped to it; the poll catches what lies beyond.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long finished attempts wait to share a claim (see soon). */
const FINISH_DEBOUNCE_MS = 0;

/** Options of {@link WakeSchedule}. */
export interface WakeScheduleOptions {
  /** Called on every wake-up. */
  wake: () => void;
  /** How often to wake up with nothing else happening. */
  pollIntervalMs: number;
  /** LISTEN for `hookline_due` on this connection; without it, no notifications (tests). */
  listen?: {
    databaseUrl: string;
    log: Logger;
    /** The application_name of this process's pool connections, whose notifications are skipped. */
    applicationName?: string;
  };
}

/** The wake-ups of one scheduler; see the module comment. */
export class WakeSchedule {
  /** Moments this process knows work becomes due, ascending (see at). */
  private readonly times: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private finishTimer: NodeJS.Timeout | undefined;
  private armed = false;
  private readonly listener: NotifyListener | undefined;

  constructor(private readonly options: WakeScheduleOptions) {
    const l = options.listen;
    this.listener = l ? new NotifyListener(l.databaseUrl, DUE_CHANNEL, () => options.wake(), l.log, l.applicationName) : undefined;
  }

  /** Starts polling and listening, and arms the timer for the moments already known. */
  async start(): Promise<void> {
    if (this.armed) throw new Error("wake schedule already started");
    this.armed = true;
    this.pollTimer = setInterval(() => this.options.wake(), this.options.pollIntervalMs);
    this.pollTimer.unref();
    this.arm();
    await this.listener?.start();
  }

  /** Stops every wake-up: timers cleared, the LISTEN connection closed. */
  async stop(): Promise<void> {
    this.armed = false;
    clearInterval(this.pollTimer);
    clearTimeout(this.timer);
    clearTimeout(this.finishTimer);
    this.timer = undefined;
    this.finishTimer = undefined;
    await this.listener?.stop();
  }

  /** The earliest moment remembered, if any. */
  get next(): number | undefined {
    return this.times[0];
  }

  /**
   * Remembers a moment (ms since the epoch) when work becomes due, and keeps
   * the timer armed for the earliest. At most MAX_WAKE_TIMES are kept; past
   * that the latest are dropped and the poll catches them.
   */
  at(moment: number): void {
    const times = this.times;
    let lo = 0;
    let hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (times[mid]! < moment) lo = mid + 1;
      else hi = mid;
    }
    if (times[lo] === moment) return;
    times.splice(lo, 0, moment);
    if (times.length > MAX_WAKE_TIMES) times.pop();
    if (lo === 0) this.arm();
  }

  /**
   * A wake-up shortly after an attempt finished: its capacity (of this
   * process or of the endpoint's lane) may let due work through. Finishes
   * within FINISH_DEBOUNCE_MS (0: the same turn of the event loop) share one
   * wake-up, and while a claim runs further wake-ups ask for just one more
   * (see claimer.ts), so under load a claim takes several rows. Measured on
   * the benchmark's backlog: a 2 ms debounce gave 2,950 deliveries/s, none
   * 3,780, with less PostgreSQL CPU per delivery (0.20 ms against 0.25 ms):
   * the claim loop is serial, so any wait before a claim is lost throughput.
   */
  soon(): void {
    if (this.finishTimer || !this.armed) return;
    this.finishTimer = setTimeout(() => {
      this.finishTimer = undefined;
      this.options.wake();
    }, FINISH_DEBOUNCE_MS);
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const next = this.times[0];
    if (next === undefined || !this.armed) return;
    this.timer = setTimeout(() => {
      const now = Date.now();
      while (this.times.length > 0 && this.times[0]! <= now) this.times.shift();
      this.options.wake();
      this.arm();
      // A little late on purpose: due times from PostgreSQL carry
      // microseconds that a JS Date drops, and a timer that fires a fraction
      // of a millisecond early finds nothing due and no later wake-up.
    }, Math.min(MAX_TIMER_MS, Math.max(0, next - Date.now()) + WAKE_LATE_MS));
    this.timer.unref();
  }
}

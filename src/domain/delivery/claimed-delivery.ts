/**
 * A claimed delivery: what the claim (store/sql/claim-due.ts) hands the
 * scheduler for one attempt, so the dispatch needs no second query.
 */
import type { StoredRetryPolicy } from "./retry-policy.js";

/** One secret of an endpoint, as stored (sealed); `expiresAt` is set on secrets being rotated out. */
export interface StoredSecret {
  secret: string;
  expiresAt: string | null;
}

/** A claimed delivery with what its dispatch needs. */
export interface ClaimedDelivery {
  id: string;
  eventId: string;
  endpointId: string;
  tenantId: string;
  eventType: string;
  /** The number of this attempt (1 for the first). */
  attemptNumber: number;
  body: string;
  url: string;
  headers: Record<string, string>;
  secrets: StoredSecret[];
  signatureScheme: "standard-webhooks" | "github";
  retryPolicy: StoredRetryPolicy | null;
  timeoutMs: number | null;
  /** The endpoint's in-flight limit; null means the server default. */
  maxInFlight: number | null;
  /** The endpoint's rate limit in requests per second; null means none. */
  rateLimitPerSecond: number | null;
  ordered: boolean;
  /** The endpoint's circuit is half-open: this attempt is the probe. */
  probe: boolean;
  /**
   * When this process's lease on the delivery ends: also the lease's token.
   * Leases end on a whole millisecond and each claim's ends later than the
   * one before, so the queue row holds exactly this time while, and only
   * while, it holds this lease; the attempt's outcome and a release change
   * the delivery only then (not under a later lease of the same process,
   * taken once this one had lapsed).
   */
  leaseUntil: Date;
}

/**
 * Typed, prefixed, time-sortable ids: `evt_`, `ep_`, `dlv_`, `atm_`, `key_`.
 *
 * The part after the prefix is a ULID (48-bit millisecond time + 80 random
 * bits, Crockford base32), so ids sort by creation time and list cursors can
 * page by id. Ids made in one process are strictly increasing. Ids made in
 * SQL use the same format: delivery ids, made from their event's time and a
 * hash (see insert-events.ts).
 */
import { randomFillSync } from "node:crypto";
import { monotonicFactory } from "ulid";

/** The prefix of each kind of id. */
export const ID_PREFIX = {
  event: "evt_",
  endpoint: "ep_",
  delivery: "dlv_",
  attempt: "atm_",
  apiKey: "key_",
} as const;

/** A kind of id. */
export type IdKind = keyof typeof ID_PREFIX;

/**
 * Cryptographic randomness for the ULID's random part, drawn from a pooled
 * buffer: ulid asks for one number per character, and a randomFillSync call
 * per character was 2 % of the delivery worker's CPU in the benchmark.
 */
const pool = new Uint32Array(1024);
let next = pool.length;
function pooledRandom(): number {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  return pool[next++]! / 2 ** 32;
}

const ulid = monotonicFactory(pooledRandom);

/** Makes a new id of the given kind. */
export function newId(kind: IdKind): string {
  return ID_PREFIX[kind] + ulid();
}


/**
 * The smallest id of `kind` made at or after `at`: every id made before
 * sorts below it, so it bounds "older than" scans on the primary key.
 */
export function firstIdAt(kind: IdKind, at: Date): string {
  return ID_PREFIX[kind] + encodeTime(Math.max(0, at.getTime())) + "0".repeat(16);
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A ULID's time part: 10 Crockford base32 digits of the millisecond time. */
function encodeTime(ms: number): string {
  let out = "";
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[ms % 32]! + out;
    ms = Math.floor(ms / 32);
  }
  return out;
}

/**
 * Shared by the chaos, fuzzing and limit tests: how long they run, and how
 * they report their figures. `npm test` runs the short versions;
 * `npm run test:chaos` sets HOOKLINE_CHAOS=long for the long ones. Figures
 * are printed, and appended as JSON lines to HOOKLINE_CHAOS_REPORT when set
 * (docs/reliability.md is written from them).
 */
import { appendFileSync } from "node:fs";

/** Whether the long versions run. */
export const LONG = process.env.HOOKLINE_CHAOS === "long";

/** `short` in `npm test`, `long` in `npm run test:chaos`. */
export function scale<T>(short: T, long: T): T {
  return LONG ? long : short;
}

/** Prints the figures of one experiment and records them. */
export function report(experiment: string, figures: Record<string, number | string | boolean>): void {
  const width = Math.max(...Object.keys(figures).map((k) => k.length));
  const lines = Object.entries(figures).map(([k, v]) => `  ${k.padEnd(width)}  ${v}`);
  process.stdout.write(`\n[${LONG ? "long" : "short"}] ${experiment}\n${lines.join("\n")}\n`);
  const file = process.env.HOOKLINE_CHAOS_REPORT;
  if (file) appendFileSync(file, `${JSON.stringify({ experiment, mode: LONG ? "long" : "short", at: new Date().toISOString(), ...figures })}\n`);
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The seed of a seeded experiment: HOOKLINE_CHAOS_SEED when set (to replay
 * a run, or to try a new one), otherwise `fixed`, so runs repeat by default.
 */
export function chaosSeed(fixed: number): number {
  const raw = process.env.HOOKLINE_CHAOS_SEED;
  return raw === undefined || raw === "" ? fixed : Number(raw);
}

/** A seeded generator of numbers in [0, 1) (mulberry32), so a run can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The physical limit for delivery on this machine: a raw undici Pool that
 * signs (Standard Webhooks, the same code Hookline uses) and POSTs the same
 * bodies to the same receiver with the same concurrency, with no database.
 * Runs in its own process; prints one JSON line: { count, ms }.
 *
 * Usage: node --import tsx bench/baseline.ts <url> <count> <concurrency> <secret>
 */
import { Pool } from "undici";
import { signatureHeaders } from "../src/signing/sign.js";

const [url, countText, concurrencyText, secret] = process.argv.slice(2);
const count = Number(countText);
const concurrency = Number(concurrencyText);
const target = new URL(url!);
const pool = new Pool(target.origin, { connections: concurrency, pipelining: 1, keepAliveTimeout: 30_000 });

let next = 0;
async function worker(): Promise<void> {
  while (next < count) {
    const i = next++;
    const body = `{"type":"bench.baseline","timestamp":"${new Date().toISOString()}","data":{"i":${i}}}`;
    const headers = {
      ...signatureHeaders("standard-webhooks", [secret!], `evt_baseline_${i}`, Math.floor(Date.now() / 1000), body),
      "content-type": "application/json",
      "user-agent": "Hookline-baseline",
    };
    const res = await pool.request({ path: target.pathname, method: "POST", headers, body });
    for await (const _ of res.body) {
      // drain
    }
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
  }
}

const started = performance.now();
await Promise.all(Array.from({ length: concurrency }, worker));
const ms = performance.now() - started;
await pool.close();
process.stdout.write(`${JSON.stringify({ count, ms })}\n`);

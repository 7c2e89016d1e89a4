/**
 * What one attempt's HTTP call costs the delivery process: HttpClient.post
 * (src/delivery/http-client.ts) against the bench receiver, 64 requests in
 * flight, the same ~300-byte body, next to a bare undici `pool.request`
 * whose body is drained (what bench/baseline.ts does). Prints this process's
 * CPU per request for each, alternating, so several rounds give a range.
 *
 * Usage: node --import tsx bench/http-cost.ts [requests per round] [rounds]
 */
import { Pool } from "undici";
import { AddressGuard } from "../src/delivery/address-guard.js";
import { HttpClient } from "../src/delivery/http-client.js";
import { ReceiverProcess } from "./run.js";

const perRound = Number(process.argv[2] ?? 20_000);
const rounds = Number(process.argv[3] ?? 3);
const CONCURRENCY = 64;
const body = JSON.stringify({ type: "bench.event", timestamp: new Date().toISOString(), data: { pad: "x".repeat(240) } });
const headers = { "content-type": "application/json", "user-agent": "Hookline-bench", "webhook-id": "evt_1" };

async function measure(label: string, call: () => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next++ < perRound) await call();
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const us = (cpu.user + cpu.system) / perRound;
  console.log(`${label.padEnd(22)} ${us.toFixed(1).padStart(6)} us CPU per request, ${Math.round((perRound * 1000) / ms)}/s`);
}

const receiver = await ReceiverProcess.start();
const url = new URL(`${receiver.url}/bench`);
const client = new HttpClient({ bodyLimit: 4096, guard: new AddressGuard(["127.0.0.0/8"]) });
const pool = new Pool(url.origin, { pipelining: 1, keepAliveTimeout: 30_000 });
const variants: Array<[string, () => Promise<void>]> = [
  [
    "HttpClient.post",
    async () => {
      const r = await client.post(url, { ...headers }, body, 30_000);
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
    },
  ],
  [
    "undici request (raw)",
    async () => {
      const res = await pool.request({ path: url.pathname, method: "POST", headers: { ...headers }, body });
      for await (const _ of res.body) {
        // drain
      }
    },
  ],
];
try {
  for (const [label, call] of variants) await measure(`${label} (warm-up)`, call);
  for (let round = 0; round < rounds; round++) for (const [label, call] of variants) await measure(label, call);
} finally {
  await client.close();
  await pool.close();
  receiver.stop();
}
process.exit(0);

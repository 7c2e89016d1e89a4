/**
 * The benchmark's receiver, in its own process: a node:http server on
 * 127.0.0.1 that answers 200 at once, counts requests, records each
 * delivery's publish-to-arrival latency (the publisher puts its send time in
 * the payload as "t", on the shared clock `performance.timeOrigin + now()`),
 * and verifies the Standard Webhooks signature of a sample of requests.
 *
 * Driven over IPC: { cmd: "secret", secret } | { cmd: "reset" } | { cmd: "stats" }.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

const now = () => performance.timeOrigin + performance.now();

let count = 0;
let latencies: number[] = [];
let firstAt = 0;
let lastAt = 0;
let verifier: Webhook | undefined;
let verified = 0;
let badSignatures = 0;
const ids = new Map<string, number>();

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const at = now();
    res.writeHead(200).end();
    count++;
    if (firstAt === 0) firstAt = at;
    lastAt = at;
    const id = String(req.headers["webhook-id"]);
    ids.set(id, (ids.get(id) ?? 0) + 1);
    const body = Buffer.concat(chunks).toString("utf8");
    const t = /"t":([0-9.]+)/.exec(body);
    if (t) latencies.push(at - Number(t[1]));
    if (verifier && count % 100 === 1) {
      try {
        verifier.verify(body, {
          "webhook-id": id,
          "webhook-timestamp": String(req.headers["webhook-timestamp"]),
          "webhook-signature": String(req.headers["webhook-signature"]),
        });
        verified++;
      } catch {
        badSignatures++;
      }
    }
  });
});
server.keepAliveTimeout = 60_000;

server.listen(0, "127.0.0.1", () => {
  process.send?.({ ready: true, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
});

process.on("message", (msg: { cmd: string; secret?: string }) => {
  if (msg.cmd === "secret") verifier = new Webhook(msg.secret!);
  if (msg.cmd === "reset") {
    count = 0;
    latencies = [];
    firstAt = 0;
    lastAt = 0;
    ids.clear();
  }
  if (msg.cmd === "stats") {
    let duplicates = 0;
    for (const n of ids.values()) duplicates += n - 1;
    process.send?.({ count, distinct: ids.size, duplicates, firstAt, lastAt, latencies, verified, badSignatures });
  }
});
process.on("disconnect", () => process.exit(0));

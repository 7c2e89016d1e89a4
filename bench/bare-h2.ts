import { fork } from "node:child_process";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { GrpcLoad } from "./grpc-load.js";
import { cpuMs } from "./process-usage.js";

if (process.argv[2] === "serve") {
  const server = http2
    .createServer((req, res) => {
      req.on("data", () => {});
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/grpc+proto" });
        res.addTrailers({ "grpc-status": "0" });
        res.end(Buffer.from([0, 0, 0, 0, 0]));
      });
    })
    .listen(0, "127.0.0.1", () => process.send!((server.address() as AddressInfo).port));
} else {
  const rate = 500;
  const child = fork(new URL(import.meta.url).pathname, ["serve"], { execArgv: ["--import", "tsx"] });
  const port = await new Promise<number>((r) => child.once("message", (m) => r(m as number)));
  const load = new GrpcLoad(`http://127.0.0.1:${port}`);
  const call = () => load.call("/x/y", [Buffer.alloc(300)]);
  await Promise.all(Array.from({ length: 500 }, call));
  for (let run = 0; run < 3; run++) {
    const c0 = await cpuMs(child.pid!);
    const t0 = performance.now();
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < rate * 8; i++) {
      const wait = t0 + (i * 1000) / rate - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait - 1));
      calls.push(call());
    }
    await Promise.all(calls);
    console.log(`bare http2 at ${rate}/s: ${(((await cpuMs(child.pid!)) - c0) / (performance.now() - t0)).toFixed(3)} cores`);
  }
  load.close();
  child.kill();
}

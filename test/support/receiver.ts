/**
 * A real HTTP receiver on 127.0.0.1 that records every request and answers
 * as the test tells it, changeable mid-test.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { beforeAll } from "vitest";
import { madeBeforeAll } from "./made-before-all.js";

/** One request the receiver got. */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The raw body, exactly as received. */
  body: string;
  at: number;
}

/** How to answer one request. */
export interface Reply {
  status: number;
  body?: string;
  headers?: Record<string, string>;
}

/** A running receiver. */
export interface Receiver {
  /** Base URL, e.g. http://127.0.0.1:PORT */
  url: string;
  requests: ReceivedRequest[];
  /** Requests being answered right now, and the most there ever were at once. */
  readonly concurrency: { now: number; max: number };
  /**
   * Sets how the next requests are answered (by the request's 0-based index).
   * A promise delays the answer; one that never settles hangs the request.
   */
  reply(fn: (index: number, req: ReceivedRequest) => Reply | Promise<Reply>): void;
  /** Resolves when at least `n` requests have arrived; rejects after `timeoutMs`. */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  /** Resolves once no request has arrived for `ms` (none that `which` selects, when given). */
  quiet(ms?: number, which?: (req: ReceivedRequest) => boolean): Promise<void>;
  close(): Promise<void>;
}

/** Starts a receiver that answers 200 "ok" until told otherwise. */
export async function startReceiver(): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  let replyFn: (index: number, req: ReceivedRequest) => Reply | Promise<Reply> = () => ({ status: 200, body: "ok" });
  const concurrency = { now: 0, max: 0 };
  const waiters: { n: number; resolve: () => void }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const received: ReceivedRequest = {
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        at: Date.now(),
      };
      const index = requests.length;
      requests.push(received);
      concurrency.now++;
      concurrency.max = Math.max(concurrency.max, concurrency.now);
      for (const w of waiters.filter((w) => requests.length >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      let answered = false;
      const done = () => {
        if (!answered) concurrency.now--;
        answered = true;
      };
      res.on("close", done);
      void Promise.resolve(replyFn(index, received)).then((reply) => {
        done();
        if (!res.destroyed) res.writeHead(reply.status, reply.headers).end(reply.body ?? "");
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    concurrency,
    reply(fn) {
      replyFn = fn;
    },
    waitFor(n, timeoutMs = 10_000) {
      if (requests.length >= n) return Promise.resolve(requests);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`receiver got ${requests.length} requests, expected ${n}`)),
          timeoutMs,
        );
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve(requests);
          },
        });
      });
    },
    async quiet(ms = 500, which = () => true) {
      const count = () => requests.filter(which).length;
      let last = -1;
      while (last !== count()) {
        last = count();
        await new Promise((resolve) => setTimeout(resolve, ms));
      }
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A receiver started before the tests of the file (or describe block) this
 * is called in and closed after them; it answers with `reply` (200 "ok" if
 * none) until told otherwise.
 */
export function useReceiver(reply?: (index: number, req: ReceivedRequest) => Reply | Promise<Reply>): Receiver {
  return madeBeforeAll(
    async () => {
      const r = await startReceiver();
      if (reply) r.reply(reply);
      return r;
    },
    (r) => r.close(),
  );
}

/**
 * Starts receivers on demand (each answering with `reply`, 200 "ok" if
 * none) during the tests of the file (or describe block) this is called
 * in, and closes them all after them: call it before useTestHookline, so
 * that they close after Hookline has stopped.
 */
export function useReceivers(): (reply?: (index: number, req: ReceivedRequest) => Reply | Promise<Reply>) => Promise<Receiver> {
  const started: Receiver[] = [];
  beforeAll(() => async () => {
    for (const r of started.splice(0)) await r.close();
  });
  return async (reply) => {
    const r = await startReceiver();
    if (reply) r.reply(reply);
    started.push(r);
    return r;
  };
}

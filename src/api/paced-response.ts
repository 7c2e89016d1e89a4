/**
 * Responses that hold few unsent writes, for streams to clients that read
 * slowly or not at all.
 *
 * connect-node writes a stream's messages one by one and waits for "drain"
 * only once `write()` returns false, which Node does when a stream buffers
 * 16 KiB (its high-water mark). A WatchDeliveries update is about 140 bytes,
 * so a stream whose client does not read held about 118 unsent writes, each
 * with its buffer, callback and promise: about 150 KB of heap a stream (a
 * heap snapshot of 200 such watchers: 23,600 pending writes), where the
 * bytes themselves are 16 KiB. Here `write()` also returns false once
 * MAX_UNSENT writes are not yet handed to the connection, and "drain"
 * follows when they all are. A unary call writes once, so it is unchanged.
 */
import http from "node:http";
import http2 from "node:http2";

/**
 * Unsent writes a response holds at most before its writer waits. Small
 * enough that a stuck stream costs about 20 KB, large enough that a reading
 * client gets this many updates per turn of the event loop.
 */
export const MAX_UNSENT = 16;

type WriteCallback = (err?: Error | null) => void;
type Write = (chunk: unknown, encoding: BufferEncoding | undefined, cb: WriteCallback) => boolean;

/** Counts one response's unsent writes; see the module comment. */
class Pace {
  private unsent = 0;
  private waiting = false;

  constructor(private readonly emitDrain: () => void) {}

  write(write: Write, chunk: unknown, encoding: BufferEncoding | WriteCallback | undefined, cb: WriteCallback | undefined): boolean {
    if (typeof encoding === "function") {
      cb = encoding;
      encoding = undefined;
    }
    this.unsent++;
    const ok = write(chunk, encoding, (err) => {
      this.unsent--;
      if (this.waiting && this.unsent === 0) {
        this.waiting = false;
        this.emitDrain();
      }
      cb?.(err);
    });
    // Not written at all (Node's own backpressure): its "drain" comes as usual.
    if (!ok || this.unsent <= MAX_UNSENT) return ok;
    this.waiting = true;
    return false;
  }
}

/** An HTTP/2 response with at most MAX_UNSENT unsent writes (http2.createServer's `Http2ServerResponse`). */
export class PacedHttp2Response extends http2.Http2ServerResponse {
  private readonly pace = new Pace(() => this.emit("drain"));

  // biome-ignore lint/suspicious/noExplicitAny: the signature of Http2ServerResponse.write.
  override write(chunk: any, encoding?: any, cb?: any): boolean {
    return this.pace.write((c, e, done) => super.write(c as string, e as BufferEncoding, done), chunk, encoding, cb);
  }
}

/** An HTTP/1.1 response with at most MAX_UNSENT unsent writes (http.createServer's `ServerResponse`). */
export class PacedHttp1Response extends http.ServerResponse {
  private readonly pace = new Pace(() => this.emit("drain"));

  // biome-ignore lint/suspicious/noExplicitAny: the signature of ServerResponse.write.
  override write(chunk: any, encoding?: any, cb?: any): boolean {
    return this.pace.write((c, e, done) => super.write(c as string, e as BufferEncoding, done), chunk, encoding, cb);
  }
}

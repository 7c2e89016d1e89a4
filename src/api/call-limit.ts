/**
 * Load shedding: a bound on the unary calls this process handles at once.
 * Each call in progress holds its HTTP/2 stream, decoded request and
 * handler state (tens of kilobytes), so a flood faster than the database
 * takes events would otherwise grow the heap until the process dies: a
 * 2,000/s burst of Publish for 8 s exhausted a 256 MB heap before the
 * limit. A call past it is answered at once with RESOURCE_EXHAUSTED, which
 * costs far less than serving it, and clients retry with backoff; the calls
 * in progress go on undisturbed.
 *
 * Streams are not counted: WatchDeliveries and health watches last as long
 * as their clients like, and PublishStream's messages wait in the publish
 * queue, which HOOKLINE_PUBLISH_PENDING_BYTES bounds. Health checks and
 * reflection are never refused, so a load balancer does not mistake a busy
 * process for a dead one.
 */
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/** Services whose calls are never shed. */
const NEVER_SHED = new Set(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);

/** Counts and bounds the unary calls in progress. */
export class CallLimit {
  private inProgress = 0;

  constructor(
    readonly max: number,
    /** Told of each call refused. */
    private readonly onRefused: () => void = () => {},
  ) {}

  /** Unary calls in progress now. */
  get current(): number {
    return this.inProgress;
  }

  /** The interceptor; put it before authentication, so shedding costs no lookup. */
  interceptor(): Interceptor {
    return (next) => async (req) => {
      if (req.method.methodKind !== "unary" || NEVER_SHED.has(req.service.typeName)) return next(req);
      if (this.inProgress >= this.max) {
        this.onRefused();
        throw new ConnectError(
          `server busy: ${this.max} calls in progress (HOOKLINE_MAX_CONCURRENT_CALLS); retry with backoff`,
          Code.ResourceExhausted,
        );
      }
      this.inProgress++;
      try {
        return await next(req);
      } finally {
        this.inProgress--;
      }
    };
  }
}

/**
 * Plain HTTP probes for load balancers and orchestrators, on the API port
 * beside the RPCs:
 * - `GET /healthz`: 200 while the process runs (liveness), 503 when `notLive`
 *   names a problem that restarting the process may cure (the embedded
 *   PostgreSQL down for longer than HOOKLINE_EMBEDDED_PG_RESTART_TIMEOUT);
 * - `GET /readyz`: 200 while it serves (the database is reachable and it is
 *   not shutting down), 503 otherwise (readiness), the same state gRPC
 *   health checks report;
 * - `GET /metrics`: Prometheus metrics (see metrics/metrics.ts).
 * Everything else goes to the RPC handler.
 */
import type http from "node:http";
import type http2 from "node:http2";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import type { Metrics } from "../metrics/metrics.js";
import type { HealthState } from "./health.js";

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;
type Handler = (req: Request, res: Response) => void;

/**
 * Wraps `next` with the /healthz, /readyz and /metrics routes. `notLive`
 * returns why the process is not alive, or undefined while it is.
 */
export function withProbes(next: Handler, health: HealthState, metrics?: Metrics, notLive?: () => string | undefined): Handler {
  return (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path === "/metrics" && metrics && req.method === "GET") {
      const out = res as http.ServerResponse;
      metrics.text().then(
        ({ contentType, body }) => {
          out.writeHead(200, { "content-type": contentType, "cache-control": "no-store" });
          out.end(body);
        },
        () => {
          out.writeHead(503, { "content-type": "text/plain; charset=utf-8" });
          out.end("metrics unavailable (is the database reachable?)\n");
        },
      );
      return;
    }
    if ((path !== "/healthz" && path !== "/readyz") || (req.method !== "GET" && req.method !== "HEAD")) {
      next(req, res);
      return;
    }
    const problem = path === "/healthz" ? notLive?.() : health.get("") === ServingStatus.SERVING ? undefined : "not serving";
    const ready = problem === undefined;
    const body = ready ? "ok\n" : `${problem}\n`;
    (res as http.ServerResponse).writeHead(ready ? 200 : 503, {
      "content-type": "text/plain; charset=utf-8",
      "cache-control": "no-store",
    });
    (res as http.ServerResponse).end(req.method === "HEAD" ? undefined : body);
  };
}

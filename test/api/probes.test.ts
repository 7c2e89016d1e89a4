/** GET /healthz and /readyz on the API port, for load balancers. */
import { expect, it } from "vitest";
import { HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";

const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_ADMIN_TOKEN: "probe-admin-token-0123456789" });

const get = async (path: string) => {
  const res = await fetch(`${app.url}${path}`);
  return [res.status, await res.text()] as const;
};

it("answers liveness always and readiness while serving, without a token", async () => {
  expect(await get("/healthz")).toEqual([200, "ok\n"]);
  expect(await get("/readyz")).toEqual([200, "ok\n"]);
  // What the database probe and shutdown do: readiness goes, liveness stays.
  app.health.setAll(ServingStatus.NOT_SERVING);
  try {
    expect(await get("/readyz")).toEqual([503, "not serving\n"]);
    expect(await get("/healthz")).toEqual([200, "ok\n"]);
  } finally {
    app.health.setAll(ServingStatus.SERVING);
  }
  expect((await get("/readyz"))[0]).toBe(200);
  // Other paths are RPC routes (none here).
  expect((await get("/nothing"))[0]).toBe(404);
});

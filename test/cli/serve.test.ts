/**
 * `hookline serve` is the server process of `npm start`: it serves, stops
 * gracefully on SIGTERM with exit code 0, and refuses a bad configuration
 * with exit code 2.
 */
import { afterAll, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { useTestDatabase } from "../support/database.js";
import { testEnv } from "../support/hookline.js";
import { type HooklineProcess, spawnHookline } from "../support/process.js";
import { useReceiver } from "../support/receiver.js";

let proc: HooklineProcess | undefined;

const r = useReceiver();
const db = useTestDatabase();

afterAll(async () => {
  await proc?.kill("SIGKILL");
});

it("serves the API and delivers, then stops on SIGTERM with exit code 0", async () => {
  proc = await spawnHookline(testEnv(db.url), 30_000, "cli");
  const env = { HOOKLINE_URL: proc.url };
  const created = await runCli(["endpoints", "create", `${r.url}/served`, "--tenant", "serve", "--json"], env);
  expect(created.code, created.stderr).toBe(0);
  const published = await runCli(["publish", "serve.e", '{"ok":true}', "--tenant", "serve"], env);
  expect(published.code, published.stderr).toBe(0);
  await r.waitFor(1);
  expect(await proc.kill("SIGTERM")).toBe(0);
  expect(proc.logs.map((l) => l.msg)).toContain("Hookline stopped");
});

it("exits with 2 and names the variable when the configuration is wrong", async () => {
  const res = await runCli(["serve"], { ...testEnv(db.url), HOOKLINE_PORT: "http" });
  expect(res.code).toBe(2);
  expect(res.stderr).toMatch(/^hookline: HOOKLINE_PORT=http: expected a whole number/);
});

/**
 * Starts one real PostgreSQL for the whole run (DATABASE_URL when set,
 * otherwise an embedded server in a temporary directory), migrates a
 * template database once, and hands its server URL to the test files, each
 * of which clones the template into a fresh database (see database.ts).
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import pg from "pg";
import { databaseUrl, startEmbeddedPostgres } from "../../src/store/embedded-postgres.js";
import { openStore } from "../../src/store/store.js";
import { freePort } from "./free-port.js";

export const TEMPLATE_DATABASE = "hookline_test_template";

declare module "vitest" {
  export interface ProvidedContext {
    pgServerUrl: string;
    templateDatabase: string;
  }
}


export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let serverUrl: string;
  let stop = async () => {};
  if (process.env.DATABASE_URL) {
    serverUrl = process.env.DATABASE_URL;
  } else {
    const dir = await mkdtemp(join(tmpdir(), "hookline-test-pg-"));
    // Reachable by the "postgres" user that runs the server when tests run as root.
    await chmod(dir, 0o755);
    const embedded = await startEmbeddedPostgres({ dir: join(dir, "pg"), port: await freePort() });
    serverUrl = embedded.serverUrl;
    stop = async () => {
      await embedded.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  await admin.end();
  const store = await openStore(databaseUrl(serverUrl, TEMPLATE_DATABASE), 2);
  await store.close();
  project.provide("pgServerUrl", serverUrl);
  project.provide("templateDatabase", TEMPLATE_DATABASE);
  return stop;
}

/**
 * Starts one real PostgreSQL for the whole run (DATABASE_URL when set,
 * otherwise an embedded server in a temporary directory), migrates a
 * template database once, and hands its server URL to the test files, each
 * of which clones the template into a fresh database (see database.ts).
 */
import type { TestProject } from "vitest/node";
import pg from "pg";
import { databaseUrl } from "../../src/store/embedded-postgres.js";
import { startPostgresServer } from "./postgres-server.js";
import { openStore } from "../../src/store/store.js";

export const TEMPLATE_DATABASE = "hookline_test_template";

declare module "vitest" {
  export interface ProvidedContext {
    pgServerUrl: string;
    templateDatabase: string;
  }
}


export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { serverUrl, stop } = await startPostgresServer();
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

/**
 * Wake-ups: committing new deliveries notifies every listening scheduler,
 * except the one in the publishing process itself (it takes its own
 * deliveries by id), which it recognises by its connections' application_name.
 */
import pg from "pg";
import { pino } from "pino";
import { beforeAll, expect, it } from "vitest";
import { DUE_CHANNEL, NotifyListener } from "../../src/store/notify-listener.js";
import { useTestDatabase } from "../support/database.js";

const db = useTestDatabase();

beforeAll(async () => {
  await db.query(`INSERT INTO endpoints (id, tenant_id, url, secrets) VALUES ('ep_w', 't', 'http://127.0.0.1:1/', '[]')`);
  await db.query(`INSERT INTO events (id, tenant_id, event_type, body) VALUES ('evt_w', 't', 'a.b', '{}')`);
});

/** Queues one delivery over a connection named `applicationName`. */
async function insertAs(applicationName: string, id: string): Promise<void> {
  const client = new pg.Client({ connectionString: db.url, application_name: applicationName });
  await client.connect();
  await client.query(
    `INSERT INTO delivery_queue (delivery_id, endpoint_id, tenant_id, seq, due_at)
     VALUES ($1, 'ep_w', 't', 1, now())`,
    [id],
  );
  await client.end();
}

it("wakes on other processes' new deliveries and skips its own", async () => {
  let wakes = 0;
  const listener = new NotifyListener(db.url, DUE_CHANNEL, () => wakes++, pino({ level: "silent" }), "hookline-self");
  await listener.start();
  // Connecting wakes once: anything published while not listening is due.
  expect(wakes).toBe(1);
  await insertAs("hookline-self", "dlv_1");
  await insertAs("hookline-other", "dlv_2");
  await expect.poll(() => wakes).toBe(2);
  await insertAs("hookline-self", "dlv_3");
  await insertAs("hookline-other", "dlv_4");
  await expect.poll(() => wakes).toBe(3);
  // Nothing more arrives late.
  await new Promise((r) => setTimeout(r, 100));
  expect(wakes).toBe(3);
  await listener.stop();
});

/**
 * The web console end to end: built with Vite, served by a real Hookline
 * (with tokens on), driven in headless Chromium through playwright-core,
 * against a real receiver. Each test uses its own tenant, so they do not
 * depend on one another's order.
 *
 * Needs Debian's chromium (HOOKLINE_CHROMIUM to use another); without it the
 * file is skipped, unless HOOKLINE_REQUIRE_BROWSER=1, which fails instead.
 * With HOOKLINE_CONSOLE_SCREENSHOTS=<dir>, the views are saved there as PNGs
 * at 1440x900, to judge how they look.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { build } from "vite";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DeliveryStatus } from "../../gen/hookline/v1/delivery_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { startTestHookline, type TestHookline } from "../support/hookline.js";
import { type Receiver, type Reply, startReceiver } from "../support/receiver.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CHROMIUM = process.env.HOOKLINE_CHROMIUM ?? "/usr/bin/chromium";
const REQUIRE_BROWSER = process.env.HOOKLINE_REQUIRE_BROWSER === "1";
const SCREENSHOTS = process.env.HOOKLINE_CONSOLE_SCREENSHOTS;
const HAVE_BROWSER = existsSync(CHROMIUM);

const ADMIN_TOKEN = "console-e2e-admin-token-0123456789";
const INGEST_TOKEN = "console-e2e-ingest-token-0123456789";
/** How long the console may take to show what the test waits for. */
const SHOWN_MS = 15_000;

let outDir: string;
let db: TestDatabase;
let app: TestHookline;
let receiver: Receiver;
let browser: Browser;
let context: BrowserContext | undefined;
/** Errors the page logged that are not the expected 401/403 answers (CSP violations, exceptions). */
let pageErrors: string[] = [];
/** How the receiver answers, by request path: a reply, or one by the path's 0-based request count. */
const answers = new Map<string, Reply | ((n: number) => Reply)>();
const counts = new Map<string, number>();

const admin = () => client(WebhookAdmin, "connect-http1", app.url, ADMIN_TOKEN);
const ingest = () => client(EventIngest, "connect-http1", app.url, INGEST_TOKEN);

describe.skipIf(!HAVE_BROWSER && !REQUIRE_BROWSER)("the web console", { timeout: 90_000 }, () => {
  beforeAll(async () => {
    if (!HAVE_BROWSER) {
      throw new Error(
        `HOOKLINE_REQUIRE_BROWSER=1 but there is no Chromium at ${CHROMIUM}: install Debian's chromium ` +
          "(apt-get install chromium) or set HOOKLINE_CHROMIUM to a Chromium binary",
      );
    }
    outDir = await mkdtemp(join(tmpdir(), "hookline-console-build-"));
    await build({ configFile: join(ROOT, "console", "vite.config.ts"), build: { outDir }, logLevel: "silent" });
    db = await createTestDatabase();
    receiver = await startReceiver();
    receiver.reply((_i, req) => {
      const n = counts.get(req.path) ?? 0;
      counts.set(req.path, n + 1);
      const answer = answers.get(req.path) ?? { status: 200, body: "thanks from the receiver" };
      return typeof answer === "function" ? answer(n) : answer;
    });
    app = await startTestHookline(db.url, {
      HOOKLINE_ADMIN_TOKEN: ADMIN_TOKEN,
      HOOKLINE_INGEST_TOKEN: INGEST_TOKEN,
      HOOKLINE_CONSOLE_DIR: outDir,
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    if (SCREENSHOTS) await mkdir(SCREENSHOTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.stop();
    await receiver?.close();
    await db?.drop();
    if (outDir) await rm(outDir, { recursive: true, force: true });
  });

  afterEach(async () => {
    await context?.close();
    context = undefined;
    // Nothing the console does may be refused by its Content-Security-Policy or throw.
    expect(pageErrors).toEqual([]);
  });

  /** A fresh browser (no stored token) at 1440x900 on `hash` of the console. */
  async function open(hash = ""): Promise<Page> {
    context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    pageErrors = [];
    const page = await context.newPage();
    page.on("pageerror", (err) => pageErrors.push(`exception: ${err.message}`));
    page.on("console", (msg) => {
      // The browser logs every 401/403 the console gets by design.
      if (msg.type() === "error" && !/status of 40[13]/.test(msg.text())) pageErrors.push(msg.text());
    });
    await page.goto(`${app.url}/console/${hash}`);
    return page;
  }

  /** Enters `token` in Settings, with admin actions on or off. */
  async function signIn(page: Page, token: string, adminActions = false): Promise<void> {
    if (!(await page.locator("#token").isVisible())) await page.getByRole("button", { name: /token/i }).first().click();
    await page.fill("#token", token);
    const toggle = page.locator("#admin-actions");
    if ((await toggle.isChecked()) !== adminActions) await toggle.click();
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator("#token").waitFor({ state: "detached" });
  }

  /** A feed URL that replays from a moment ago: nothing published after it is missed while the stream opens. */
  function feedOf(tenant: string, extra: Record<string, string> = {}): string {
    const start = new Date(Date.now() - 2_000).toISOString();
    return `#/feed?${new URLSearchParams({ tenant, start, ...extra })}`;
  }

  async function endpoint(tenantId: string, path: string, retryDelaysMs?: number[]) {
    const { endpoint } = await admin().createEndpoint({
      tenantId,
      url: `${receiver.url}${path}`,
      retryPolicy: retryDelaysMs
        ? { policy: { case: "schedule", value: { delays: retryDelaysMs.map((ms) => durationFromMs(ms)) } } }
        : undefined,
    });
    return endpoint!;
  }

  async function publish(tenantId: string, eventType: string): Promise<string> {
    const { eventId } = await ingest().publish({ tenantId, eventType, payload: { case: "payloadJson", value: '{"n":1}' } });
    return eventId;
  }

  function row(page: Page, eventId: string, endpointId?: string) {
    const endpoint = endpointId ? `[data-endpoint="${endpointId}"]` : "";
    return page.locator(`tr[data-event-id="${eventId}"]${endpoint}`);
  }

  async function screenshot(page: Page, name: string): Promise<void> {
    if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
  }

  const tenant = () => `console-${randomBytes(4).toString("hex")}`;

  it("asks for a token when Hookline answers UNAUTHENTICATED, and reads once one is entered", async () => {
    const page = await open("#/feed");
    const notice = page.locator('[data-problem="unauthenticated"]');
    await notice.waitFor({ timeout: SHOWN_MS });
    expect(await notice.textContent()).toContain("Hookline needs a token");
    expect(await notice.textContent()).toContain("UNAUTHENTICATED");
    await screenshot(page, "unauthenticated");

    await notice.getByRole("button", { name: "Enter a token" }).click();
    // Admin actions need a token first.
    expect(await page.locator("#admin-actions").isDisabled()).toBe(true);
    await screenshot(page, "settings");
    await signIn(page, ADMIN_TOKEN);
    await page.locator('[data-connection="live"]').waitFor({ timeout: SHOWN_MS });
    expect(await notice.count()).toBe(0);
    expect(await page.evaluate("localStorage.getItem('hookline.console.token')")).toBe(ADMIN_TOKEN);

    // An ingest token may not read: PERMISSION_DENIED, shown as such.
    await signIn(page, INGEST_TOKEN);
    const denied = page.locator('[data-problem="permission"]');
    await denied.waitFor({ timeout: SHOWN_MS });
    expect(await denied.textContent()).toContain("PERMISSION_DENIED");
  });

  it("shows a published event in the live feed, turning SUCCEEDED, and failing receivers as RETRYING and FAILED", async () => {
    const t = tenant();
    const ok = await endpoint(t, "/ok");
    answers.set("/down", { status: 500, body: "receiver is down" });
    answers.set("/later", { status: 503, body: "try later" });
    const down = await endpoint(t, "/down", []); // one attempt, then FAILED
    const later = await endpoint(t, "/later", [3_600_000]); // a retry in an hour: RETRYING meanwhile
    const page = await open(feedOf(t));
    await signIn(page, ADMIN_TOKEN);

    const eventId = await publish(t, "invoice.paid");
    await page.locator(`tr[data-event-id="${eventId}"][data-endpoint="${ok.id}"][data-status="SUCCEEDED"]`).waitFor({ timeout: SHOWN_MS });
    await page.locator(`tr[data-endpoint="${down.id}"][data-status="FAILED"]`).waitFor({ timeout: SHOWN_MS });
    await page.locator(`tr[data-endpoint="${later.id}"][data-status="RETRYING"]`).waitFor({ timeout: SHOWN_MS });

    // One row per delivery, updated in place, with its attempts and last response.
    expect(await row(page, eventId).count()).toBe(3);
    const cells = async (endpointId: string) =>
      (await row(page, eventId, endpointId).locator("td").allInnerTexts()).map((s) => s.trim());
    const okCells = await cells(ok.id);
    expect(okCells[0]).toBe("SUCCEEDED");
    expect(okCells[1]).toBe("invoice.paid");
    // (No tenant column: the feed shows one tenant.)
    expect(okCells[4]).toBe("1");
    expect(okCells[5]).toContain("200");
    const downCells = await cells(down.id);
    expect(downCells[0]).toBe("FAILED");
    expect(downCells[5]).toContain("500");
    const laterCells = await cells(later.id);
    expect(laterCells[0]).toBe("RETRYING");
    expect(laterCells[5]).toContain("503");
    expect(laterCells[5]).toContain("next");
    expect(await page.locator('[data-connection="live"]').count()).toBe(1);

    // A few more, for a feed that looks like one.
    for (const type of ["invoice.sent", "order.created", "order.shipped"]) await publish(t, type);
    await expect.poll(() => page.locator("tr[data-delivery-id]").count(), { timeout: SHOWN_MS }).toBe(12);
    await expect
      .poll(() => page.locator(`tr[data-endpoint="${ok.id}"][data-status="SUCCEEDED"]`).count(), { timeout: SHOWN_MS })
      .toBe(4);
    await screenshot(page, "feed");
    await page.setViewportSize({ width: 1366, height: 768 });
    await screenshot(page, "feed-1366");
  });

  it("filters the feed by event type: rows that do not match go, new ones that match come", async () => {
    const t = tenant();
    await endpoint(t, "/ok");
    const page = await open(feedOf(t));
    await signIn(page, ADMIN_TOKEN);
    const order = await publish(t, "order.created");
    const invoice = await publish(t, "invoice.paid");
    await page.locator(`tr[data-event-id="${order}"][data-status="SUCCEEDED"]`).waitFor({ timeout: SHOWN_MS });
    await page.locator(`tr[data-event-id="${invoice}"][data-status="SUCCEEDED"]`).waitFor({ timeout: SHOWN_MS });

    await page.fill('input[name="types"]', "invoice.*");
    await page.getByRole("button", { name: "Apply" }).click();
    await expect.poll(() => row(page, order).count(), { timeout: SHOWN_MS }).toBe(0);
    expect(await row(page, invoice).count()).toBe(1);
    expect(decodeURIComponent(new URL(page.url()).hash)).toContain("types=invoice.*");

    const shipped = await publish(t, "order.shipped");
    const sent = await publish(t, "invoice.sent");
    await page.locator(`tr[data-event-id="${sent}"][data-status="SUCCEEDED"]`).waitFor({ timeout: SHOWN_MS });
    // The stream is in log order: once an event published after the order event
    // was delivered is shown, the order event's updates, earlier in the log, have
    // been passed over.
    await expect
      .poll(async () => (await admin().listDeliveries({ eventId: shipped })).deliveries[0]?.status, { timeout: SHOWN_MS })
      .toBe(DeliveryStatus.SUCCEEDED);
    const barrier = await publish(t, "invoice.barrier");
    await page.locator(`tr[data-event-id="${barrier}"][data-status="SUCCEEDED"]`).waitFor({ timeout: SHOWN_MS });
    expect(await row(page, shipped).count()).toBe(0);
    expect(await page.locator("tr[data-delivery-id]").count()).toBe(3);
  });

  it("lists a tenant's endpoints with their state and circuit, and shows one's statistics", async () => {
    const t = tenant();
    const active = await endpoint(t, "/ok");
    const { endpoint: paused } = await admin().createEndpoint({ tenantId: t, url: `${receiver.url}/paused`, disabled: true });
    const eventId = await publish(t, "invoice.paid");
    await expect
      .poll(async () => (await admin().listDeliveries({ eventId })).deliveries[0]?.status, { timeout: SHOWN_MS })
      .toBe(DeliveryStatus.SUCCEEDED);

    const page = await open(`#/endpoints?tenant=${t}`);
    await signIn(page, ADMIN_TOKEN);
    const activeRow = page.locator(`tr[data-endpoint-id="${active.id}"]`);
    const pausedRow = page.locator(`tr[data-endpoint-id="${paused!.id}"]`);
    await activeRow.locator('[data-circuit="closed"]').waitFor({ timeout: SHOWN_MS });
    expect(await activeRow.locator('[data-state="active"]').count()).toBe(1);
    expect(await activeRow.textContent()).toContain(`${receiver.url}/ok`);
    expect(await activeRow.textContent()).toContain("100 %");
    expect(await pausedRow.locator('[data-state="paused"]').count()).toBe(1);

    await activeRow.getByRole("link", { name: `${receiver.url}/ok` }).click();
    const panel = page.locator(`[data-endpoint-panel="${active.id}"]`);
    await panel.locator("[data-success-rate]").waitFor({ timeout: SHOWN_MS });
    expect(await panel.locator("[data-success-rate]").textContent()).toBe("100 %");
    expect(await panel.textContent()).toContain("1 succeeded");
    await screenshot(page, "endpoints");
  });

  it("shows a delivery's attempts with the response excerpt, read-only without admin actions", async () => {
    const t = tenant();
    // The first attempt fails; the retry 50 ms later succeeds.
    answers.set("/flaky", (n) => (n === 0 ? { status: 500, body: "flaky: database is restarting" } : { status: 200, body: "thanks from the receiver" }));
    const ep = await endpoint(t, "/flaky", [50]);
    const page = await open(feedOf(t));
    await signIn(page, ADMIN_TOKEN);
    const eventId = await publish(t, "invoice.paid");
    await page.locator(`tr[data-event-id="${eventId}"][data-status="SUCCEEDED"]`).waitFor({ timeout: SHOWN_MS });

    await row(page, eventId).locator("a[href^='#/deliveries/']").click();
    const view = page.locator('[data-delivery][data-status="SUCCEEDED"]');
    await view.waitFor({ timeout: SHOWN_MS });
    const attempts = page.locator("tr[data-attempt]");
    await expect.poll(() => attempts.count(), { timeout: SHOWN_MS }).toBe(2);
    const newest = (await attempts.nth(0).locator("td").allInnerTexts()).map((s) => s.trim());
    expect(newest[0]).toBe("2");
    expect(newest[2]).toBe("200");
    expect(newest[5]).toBe("thanks from the receiver");
    const first = (await attempts.nth(1).locator("td").allInnerTexts()).map((s) => s.trim());
    expect(first[2]).toBe("500");
    expect(first[4]).toContain("HTTP 500");
    expect(first[5]).toBe("flaky: database is restarting");
    expect(await page.textContent("main")).toContain(ep.id);
    // Read-only: no Retry without admin actions.
    expect(await page.locator('[data-action="retry"]').count()).toBe(0);
    await screenshot(page, "delivery");
  });

  it("retries a failed delivery with the admin token and admin actions on", async () => {
    const t = tenant();
    answers.set("/retry-me", { status: 503, body: "down for maintenance" });
    await endpoint(t, "/retry-me", []);
    const eventId = await publish(t, "invoice.paid");
    await expect
      .poll(async () => (await admin().listDeliveries({ eventId })).deliveries[0]?.status, { timeout: SHOWN_MS })
      .toBe(DeliveryStatus.FAILED);
    const { deliveries } = await admin().listDeliveries({ eventId });
    const id = deliveries[0]!.id;

    const page = await open(`#/deliveries/${id}`);
    await signIn(page, ADMIN_TOKEN);
    await page.locator('[data-delivery][data-status="FAILED"]').waitFor({ timeout: SHOWN_MS });
    expect(await page.locator('[data-action="retry"]').count()).toBe(0);

    await signIn(page, ADMIN_TOKEN, true);
    const retry = page.locator('[data-action="retry"]');
    await retry.waitFor({ timeout: SHOWN_MS });
    answers.set("/retry-me", { status: 200, body: "back again" });
    await retry.click();
    // The view follows the delivery's updates: no reload needed.
    await page.locator('[data-delivery][data-status="SUCCEEDED"]').waitFor({ timeout: SHOWN_MS });
    await expect.poll(() => page.locator("tr[data-attempt]").count(), { timeout: SHOWN_MS }).toBe(2);
    expect((await page.locator("tr[data-attempt]").nth(0).textContent()) ?? "").toContain("back again");
    const { delivery } = await admin().getDelivery({ id });
    expect(delivery?.status).toBe(DeliveryStatus.SUCCEEDED);
  });
});

/**
 * The web console's static files at /console (src/api/console.ts): content
 * types, caching, security headers, the redirect, refused paths, and what a
 * disabled or unbuilt console answers. A fixture directory stands in for
 * the Vite build, so these run without building anything.
 */
import http from "node:http";
import http2 from "node:http2";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONSOLE_SECURITY_HEADERS, defaultConsoleDir, filePath, withConsole } from "../../src/api/console.js";
import { type ApiServer, startApiServer } from "../../src/api/server.js";
import { connectionLimitsOf } from "../../src/api/connection-limits.js";
import { loadConfig } from "../../src/config.js";
import { createTestDatabase } from "../support/database.js";
import { startTestHookline } from "../support/hookline.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const INDEX = '<!doctype html><title>console</title><script type="module" src="/console/assets/index-AbC123.js"></script>';
const SCRIPT = "console.log('console');\n";

let tmp: string;
let dir: string;
const servers: ApiServer[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "hookline-console-"));
  dir = join(tmp, "console");
  await mkdir(join(dir, "assets"), { recursive: true });
  await writeFile(join(dir, "index.html"), INDEX);
  await writeFile(join(dir, "assets", "index-AbC123.js"), SCRIPT);
  await writeFile(join(dir, "assets", "index-AbC123.css"), "body{margin:0}");
  await writeFile(join(dir, "favicon.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>");
  await writeFile(join(dir, ".env"), "SECRET=hidden");
  // What a climb out of the console directory would reach.
  await writeFile(join(tmp, "secret.txt"), "the secret");
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close(1_000)));
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A server with the console in front of a handler that answers 404 "next". */
async function serve(options: { enabled?: boolean; dir?: string } = {}): Promise<ApiServer> {
  const next = (_req: unknown, res: http.ServerResponse) => {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("next");
  };
  const server = await startApiServer(
    withConsole(next as never, { enabled: options.enabled ?? true, dir: options.dir ?? dir }),
    "127.0.0.1",
    0,
    100,
    connectionLimitsOf(loadConfig({})),
  );
  servers.push(server);
  return server;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request with `path` sent exactly as written (fetch would normalise `..`). */
function request(server: ApiServer, path: string, method = "GET", headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: server.host, port: server.port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
    });
    req.on("error", reject);
    req.end();
  });
}

function expectSecurityHeaders(headers: http.IncomingHttpHeaders): void {
  for (const [name, value] of Object.entries(CONSOLE_SECURITY_HEADERS)) expect(headers[name]).toBe(value);
  expect(headers["content-security-policy"]).toContain("default-src 'self'");
  expect(headers["content-security-policy"]).toContain("connect-src 'self'");
  expect(headers["content-security-policy"]).not.toContain("unsafe-inline");
}

describe("the console's static files", () => {
  it("serves index.html at /console/, revalidated on every load, with the security headers", async () => {
    const server = await serve();
    const res = await request(server, "/console/");
    expect(res.status).toBe(200);
    expect(res.body).toBe(INDEX);
    expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(res.headers["cache-control"]).toBe("no-cache");
    expect(res.headers["x-content-type-options"]).toBe("nosniff");
    expect(res.headers["x-frame-options"]).toBe("DENY");
    expect(res.headers["referrer-policy"]).toBe("no-referrer");
    expectSecurityHeaders(res.headers);
    expect((await request(server, "/console/index.html?x=1")).body).toBe(INDEX);
  });

  it("redirects /console to /console/, keeping the query", async () => {
    const server = await serve();
    const res = await request(server, "/console?tenant=acme");
    expect(res.status).toBe(308);
    expect(res.headers.location).toBe("/console/?tenant=acme");
    expectSecurityHeaders(res.headers);
  });

  it("serves hashed assets with their content type, cached as immutable, and other files revalidated", async () => {
    const server = await serve();
    const js = await request(server, "/console/assets/index-AbC123.js");
    expect([js.status, js.body]).toEqual([200, SCRIPT]);
    expect(js.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(js.headers["content-length"]).toBe(String(Buffer.byteLength(SCRIPT)));
    expect(js.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expectSecurityHeaders(js.headers);
    const css = await request(server, "/console/assets/index-AbC123.css");
    expect(css.headers["content-type"]).toBe("text/css; charset=utf-8");
    const svg = await request(server, "/console/favicon.svg");
    expect(svg.headers["content-type"]).toBe("image/svg+xml");
    expect(svg.headers["cache-control"]).toBe("no-cache");
  });

  it("answers HEAD without a body, and a matching If-None-Match with 304", async () => {
    const server = await serve();
    const head = await request(server, "/console/", "HEAD");
    expect(head.status).toBe(200);
    expect(head.body).toBe("");
    expect(head.headers["content-length"]).toBe(String(INDEX.length));
    const etag = head.headers.etag!;
    expect(etag).toMatch(/^W\/".+"$/);
    const again = await request(server, "/console/", "GET", { "if-none-match": etag });
    expect([again.status, again.body]).toEqual([304, ""]);
    expectSecurityHeaders(again.headers);
  });

  it.each([
    "/console/../secret.txt",
    "/console/assets/../../secret.txt",
    "/console/%2e%2e/secret.txt",
    "/console/assets/..%2f..%2fsecret.txt",
    "/console/%2E%2E%2Fsecret.txt",
    "/console/..%5csecret.txt",
    "/console/assets%5c..%5c..%5csecret.txt",
    "/console//etc/passwd",
    "/console/%2fetc%2fpasswd",
    "/console/.env",
    "/console/./index.html",
    "/console/index.html%00.js",
    "/console/%E0%A4%A",
  ])("refuses %s with 400 without reading outside the console", async (path) => {
    const server = await serve();
    const res = await request(server, path);
    expect(res.status).toBe(400);
    expect(res.body).not.toContain("secret");
    expect(res.body).not.toContain("SECRET");
    expectSecurityHeaders(res.headers);
  });

  it("answers 404 for files the build did not make, and for directories", async () => {
    const server = await serve();
    for (const path of ["/console/assets/index-Nope.js", "/console/assets", "/console/feed"]) {
      const res = await request(server, path);
      expect([path, res.status, res.body]).toEqual([path, 404, "not found\n"]);
      expect(res.headers["content-type"]).toBe("text/plain; charset=utf-8");
    }
  });

  it("answers 405 to methods other than GET and HEAD", async () => {
    const server = await serve();
    const res = await request(server, "/console/", "POST");
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("GET, HEAD");
  });

  it("leaves every other path to the next handler", async () => {
    const server = await serve();
    for (const path of ["/", "/consoles", "/console.html", "/hookline.v1.WebhookAdmin/ListEndpoints"]) {
      expect((await request(server, path)).body).toBe("next");
    }
  });

  it("says how to build the console when it has not been built", async () => {
    const empty = join(tmp, "never-built");
    const server = await serve({ dir: empty });
    for (const path of ["/console/", "/console/assets/index-AbC123.js"]) {
      const res = await request(server, path);
      expect(res.status).toBe(503);
      expect(res.body).toContain("npm run build");
      expect(res.body).toContain("HOOKLINE_CONSOLE_DIR");
    }
  });

  it("is left to the next handler entirely when disabled", async () => {
    const server = await serve({ enabled: false });
    const res = await request(server, "/console/");
    expect([res.status, res.body]).toEqual([404, "next"]);
    expect(res.headers["content-security-policy"]).toBeUndefined();
  });

  it("serves over HTTP/2 (h2c) as well", async () => {
    const server = await serve();
    const session = http2.connect(server.url);
    try {
      const answer = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        const stream = session.request({ ":path": "/console/assets/index-AbC123.js" });
        let status = 0;
        let type = "";
        const chunks: Buffer[] = [];
        stream.on("response", (h) => {
          status = Number(h[":status"]);
          type = String(h["content-type"]);
        });
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("end", () => resolve({ status, type, body: Buffer.concat(chunks).toString("utf8") }));
        stream.on("error", reject);
        stream.end();
      });
      expect(answer).toEqual({ status: 200, type: "text/javascript; charset=utf-8", body: SCRIPT });
    } finally {
      session.close();
    }
  });
});

describe("paths", () => {
  it("maps paths below /console/ to files, and refuses the rest", () => {
    expect(filePath("")).toBe("index.html");
    expect(filePath("assets/index-AbC123.js")).toBe("assets/index-AbC123.js");
    expect(filePath("favicon%2Esvg")).toBe("favicon.svg");
    for (const bad of ["..", "a/../b", "%2e%2e/x", "a//b", "a/", ".env", "a\\b", "a%00", "%E0%A4%A"]) {
      expect([bad, filePath(bad)]).toEqual([bad, undefined]);
    }
  });

  it("finds dist/console beside the package.json above the module, from src/ and from dist/src/", async () => {
    const pkg = join(tmp, "package");
    await mkdir(pkg, { recursive: true });
    await writeFile(join(pkg, "package.json"), "{}");
    const fromSource = pathToFileURL(join(pkg, "src", "api", "console.ts")).href;
    const fromBuild = pathToFileURL(join(pkg, "dist", "src", "api", "console.js")).href;
    expect(defaultConsoleDir(fromSource)).toBe(join(pkg, "dist", "console"));
    expect(defaultConsoleDir(fromBuild)).toBe(join(pkg, "dist", "console"));
    expect(defaultConsoleDir()).toBe(join(ROOT, "dist", "console"));
  });

  it("reads HOOKLINE_CONSOLE and HOOKLINE_CONSOLE_DIR", () => {
    expect(loadConfig({})).toMatchObject({ consoleEnabled: true, consoleDir: undefined });
    expect(loadConfig({ HOOKLINE_CONSOLE: "false" }).consoleEnabled).toBe(false);
    expect(loadConfig({ HOOKLINE_CONSOLE_DIR: "build/console" }).consoleDir).toBe(join(process.cwd(), "build", "console"));
    expect(() => loadConfig({ HOOKLINE_CONSOLE: "maybe" })).toThrow(/HOOKLINE_CONSOLE=maybe/);
  });
});

describe("in a Hookline process", () => {
  it("serves the console from HOOKLINE_CONSOLE_DIR beside the API, and not with HOOKLINE_CONSOLE=false", async () => {
    const db = await createTestDatabase();
    const on = await startTestHookline(db.url, { HOOKLINE_CONSOLE_DIR: dir });
    const off = await startTestHookline(db.url, { HOOKLINE_CONSOLE: "false", HOOKLINE_CONSOLE_DIR: dir });
    try {
      const page = await fetch(`${on.url}/console/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toBe(INDEX);
      expect((await fetch(`${on.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${off.url}/console/`)).status).toBe(404);
      expect((await fetch(`${off.url}/healthz`)).status).toBe(200);
    } finally {
      await Promise.all([on.stop(), off.stop()]);
      await db.drop();
    }
  });
});

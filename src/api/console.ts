/**
 * The web console's static files, on the API port beside the RPCs:
 * `GET` and `HEAD` of `/console/...` answer from the directory the console
 * was built into (`npm run build`, see console/vite.config.ts); every other
 * path goes to the next handler.
 *
 * - `/console` redirects to `/console/`, which is `index.html`.
 * - `index.html` is revalidated on every load (`no-cache`, with an ETag);
 *   files under `assets/` carry a content hash in their names and are
 *   cached for a year (`immutable`).
 * - A path with `..`, `.`, empty or hidden segments, a backslash or a NUL is
 *   refused with 400 before the file system is asked; a missing file is 404;
 *   a console that was never built is 503 with the command that builds it.
 * - Every answer carries a Content-Security-Policy that allows only this
 *   origin's scripts, styles and RPCs (the console has no inline code), and
 *   refuses framing.
 *
 * The pages need no token: they are the same for everyone. The data comes
 * from the RPCs, which authenticate like any other client's.
 */
import { createReadStream, existsSync } from "node:fs";
import { stat } from "node:fs/promises";
import type http from "node:http";
import type http2 from "node:http2";
import { dirname, extname, join, resolve, sep } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;
type Handler = (req: Request, res: Response) => void;

/** How the console is served. */
export interface ConsoleOptions {
  /** Serve the console; when false, /console is left to the next handler (404). */
  enabled: boolean;
  /** The directory the console was built into (holds index.html). */
  dir: string;
}

/** The path the console is served under. */
export const CONSOLE_PATH = "/console";

/** Headers of every console answer. */
export const CONSOLE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

/** Hashed build output: the name changes with the content. */
const IMMUTABLE = "public, max-age=31536000, immutable";

/** Wraps `next` with the console's routes; see the module comment. */
export function withConsole(next: Handler, options: ConsoleOptions): Handler {
  if (!options.enabled) return next;
  const root = resolve(options.dir);
  return (req, res) => {
    const url = req.url ?? "";
    const query = url.indexOf("?");
    const path = query === -1 ? url : url.slice(0, query);
    if (path !== CONSOLE_PATH && !path.startsWith(`${CONSOLE_PATH}/`)) {
      next(req, res);
      return;
    }
    serve(root, req, res as http.ServerResponse, path, query === -1 ? "" : url.slice(query)).catch(() => {
      // The file went away while it was read, or the client left; the
      // headers may be out already, so all that is left is to cut it off.
      res.destroy();
    });
  };
}

async function serve(root: string, req: Request, res: http.ServerResponse, path: string, query: string): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return text(req, res, 405, "method not allowed: the console only answers GET and HEAD\n", { allow: "GET, HEAD" });
  }
  if (path === CONSOLE_PATH) {
    res.writeHead(308, { ...CONSOLE_SECURITY_HEADERS, location: `${CONSOLE_PATH}/${query}`, "cache-control": "no-cache" });
    res.end();
    return;
  }
  const file = filePath(path.slice(CONSOLE_PATH.length + 1));
  if (file === undefined) return text(req, res, 400, "invalid path\n");
  if (!existsSync(join(root, "index.html"))) {
    return text(
      req,
      res,
      503,
      "The web console has not been built. Run `npm run build` (or `npm run build:console`) in the Hookline " +
        "directory, or set HOOKLINE_CONSOLE_DIR to a built console.\n",
    );
  }
  const full = join(root, file);
  // filePath already refused every segment that could climb; this is the invariant it keeps.
  if (!full.startsWith(root + sep)) throw new Error(`console path escaped its directory: ${path}`);
  const info = await stat(full).catch(() => undefined);
  if (!info?.isFile()) return text(req, res, 404, "not found\n");

  const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  const headers = {
    ...CONSOLE_SECURITY_HEADERS,
    "content-type": CONTENT_TYPES[extname(full).toLowerCase()] ?? "application/octet-stream",
    "cache-control": file.startsWith("assets/") ? IMMUTABLE : "no-cache",
    etag,
  };
  if (req.headers["if-none-match"] === etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, "content-length": String(info.size) });
  if (req.method === "HEAD") {
    res.end();
    return;
  }
  await pipeline(createReadStream(full), res);
}

/**
 * The file a path below /console/ names, relative to the console's
 * directory ("" is index.html), or undefined when the path is not one the
 * build can have made: percent-encoding that does not decode, a NUL or a
 * backslash, or a segment that is empty, `.`, `..` or hidden.
 */
export function filePath(encoded: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
  if (decoded === "") return "index.html";
  if (decoded.includes("\0") || decoded.includes("\\")) return undefined;
  const segments = decoded.split("/");
  if (segments.some((s) => s === "" || s.startsWith("."))) return undefined;
  return segments.join("/");
}

function text(req: Request, res: http.ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    ...CONSOLE_SECURITY_HEADERS,
    "content-type": "text/plain; charset=utf-8",
    "cache-control": "no-store",
    ...extra,
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

/**
 * Where `npm run build` puts the console of this package: `dist/console`
 * in the nearest directory above `moduleUrl` that holds a package.json.
 * That is the same directory whether this module runs from `src/api/` (tsx)
 * or from `dist/src/api/` (compiled).
 */
export function defaultConsoleDir(moduleUrl: string = import.meta.url): string {
  const start = dirname(fileURLToPath(moduleUrl));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return join(dir, "dist", "console");
    // No package.json at all: where the source layout (src/api/) would have it.
    if (dirname(dir) === dir) return resolve(start, "..", "..", "dist", "console");
  }
}

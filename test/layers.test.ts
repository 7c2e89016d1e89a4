/**
 * Which layer may import which, read from the imports of every file under
 * src/ (type-only imports too):
 * - src/domain/delivery is the delivery engine's vocabulary (state machine,
 *   claimed deliveries, outcomes): pure, it imports nothing outside itself;
 * - domain code never imports the delivery engine, the API or the other
 *   layers that use it;
 * - the store imports from domain only the pure modules (domain/delivery,
 *   domain/ids.ts), never domain errors or rules, nor the delivery engine or
 *   the API.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

/** Why `file` may not import `target` (both relative to src/), or undefined. */
function violation(file: string, target: string): string | undefined {
  const under = (path: string, dir: string) => path.startsWith(`${dir}/`);
  if (under(file, "domain/delivery") && !under(target, "domain/delivery")) {
    return "domain/delivery is pure: it imports nothing outside itself";
  }
  if (under(file, "domain") && ["delivery", "api", "status-stream", "metrics", "retention", "cli"].some((d) => under(target, d))) {
    return "domain code never imports the layers that use it";
  }
  if (under(file, "store")) {
    if (under(target, "domain") && !under(target, "domain/delivery") && target !== "domain/ids.ts") {
      return "the store imports only domain's pure modules (domain/delivery, domain/ids.ts)";
    }
    if (["delivery", "api", "status-stream", "metrics", "retention", "cli"].some((d) => under(target, d))) {
      return "the store never imports the layers above it";
    }
  }
  return undefined;
}

/** The src/ files `file` imports (relative specifiers only), relative to src/. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(SRC, file), "utf8");
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"|\bimport\s*\(\s*"([^"]+)"\s*\)/g)].map((m) => m[1] ?? m[2]!);
  return specifiers
    .filter((s) => s.startsWith("."))
    .map((s) => normalize(join(dirname(file), s)).replace(/\.js$/, ".ts"));
}

describe("layers", () => {
  it("the rules refuse what they are meant to", () => {
    expect(violation("store/sql/insert-queue.ts", "domain/errors.ts")).toBeDefined();
    expect(violation("domain/endpoints.ts", "delivery/address-guard.ts")).toBeDefined();
    expect(violation("domain/delivery/outcome.ts", "store/sql.ts")).toBeDefined();
    expect(violation("store/sql/claim-due.ts", "domain/delivery/claimed-delivery.ts")).toBeUndefined();
    expect(violation("store/sql/retention.ts", "domain/ids.ts")).toBeUndefined();
    expect(violation("delivery/dispatch.ts", "domain/ids.ts")).toBeUndefined();
  });

  it("hold for every import under src/", () => {
    const files = (readdirSync(SRC, { recursive: true }) as string[]).filter((f) => f.endsWith(".ts"));
    const found = files.flatMap((file) =>
      importsOf(file).flatMap((target) => {
        const why = violation(file, target);
        return why ? [`src/${file} imports src/${target}: ${why}`] : [];
      }),
    );
    expect(found).toEqual([]);
    // The imports are read: the store's modules import the domain's types.
    expect(importsOf("store/sql/claim-due.ts")).toContain("domain/delivery/claimed-delivery.ts");
  });
});

import { describe, expect, it } from "vitest";
import { firstIdAt, newId } from "../../src/domain/ids.js";

const ULID = "[0-9A-HJKMNP-TV-Z]{26}";

describe("ids", () => {
  it("are prefixed ULIDs that sort in creation order", () => {
    const ids = Array.from({ length: 1_000 }, () => newId("delivery"));
    for (const id of ids) expect(id).toMatch(new RegExp(`^dlv_${ULID}$`));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    expect(newId("event")).toMatch(/^evt_/);
    expect(newId("endpoint")).toMatch(/^ep_/);
    expect(newId("attempt")).toMatch(/^atm_/);
  });

  it("firstIdAt bounds the ids made before and after a moment", async () => {
    const before = newId("event");
    await new Promise((r) => setTimeout(r, 5));
    const at = new Date();
    const bound = firstIdAt("event", at);
    await new Promise((r) => setTimeout(r, 5));
    const after = newId("event");
    expect(bound).toMatch(new RegExp(`^evt_${ULID}$`));
    expect(before < bound).toBe(true);
    expect(bound < after).toBe(true);
    expect(firstIdAt("event", new Date(0))).toBe(`evt_${"0".repeat(26)}`);
  });
});

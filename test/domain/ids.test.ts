import { describe, expect, it } from "vitest";
import { isId, newId } from "../../src/domain/ids.js";

describe("ids", () => {
  it("are prefixed ULIDs that sort in creation order", () => {
    const ids = Array.from({ length: 1_000 }, () => newId("delivery"));
    for (const id of ids) expect(isId("delivery", id)).toBe(true);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    expect(newId("event")).toMatch(/^evt_/);
    expect(newId("endpoint")).toMatch(/^ep_/);
    expect(newId("attempt")).toMatch(/^atm_/);
    expect(isId("event", "ep_01ARZ3NDEKTSV4RRFFQ69G5FAV")).toBe(false);
  });
});

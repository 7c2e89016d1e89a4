import { describe, expect, it } from "vitest";
import { newId } from "../../src/domain/ids.js";

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
});

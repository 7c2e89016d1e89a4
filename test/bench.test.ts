/**
 * The benchmark is not a test (nothing here is timed), but it must not rot:
 * run the whole harness once at a tiny scale and check that every figure was
 * measured and the deliveries were verified.
 */
import { describe, expect, it } from "vitest";
import { runBench, toMarkdown } from "../bench/run.js";

describe("npm run bench", () => {
  it("runs end to end at a tiny scale and measures every figure", async () => {
    const result = await runBench("tiny", "sources", () => {});
    const figures = result.rows.map((r) => r.figure);
    expect(figures).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^Publish \(unary/),
        expect.stringMatching(/^PublishBatch \(1,000/),
        expect.stringMatching(/^PublishStream/),
        expect.stringMatching(/^Deliveries\/s/),
        expect.stringMatching(/^Publish-to-receiver p99/),
        expect.stringMatching(/^Fan-out/),
        expect.stringMatching(/^CPU per delivery, Hookline \+ PostgreSQL/),
        expect.stringMatching(/^CPU per delivery, PostgreSQL/),
        expect.stringMatching(/^CPU cores \(Hookline \+ PostgreSQL\)/),
        expect.stringMatching(/^WAL bytes per delivered event/),
        expect.stringMatching(/^Rows updated, HOT/),
        expect.stringMatching(/^Statements per event at 10\/s/),
        expect.stringMatching(/^Transactions per event at 10\/s/),
        expect.stringMatching(/^Status stream lag p99/),
      ]),
    );
    for (const row of result.rows) expect(row.hookline, row.figure).toMatch(/^[\d,.]+$/);
    // The database's counters were read complete: every delivered event
    // wrote WAL and inserted at least its own row, and was published by a
    // statement.
    const figure = (prefix: string) => Number(result.rows.find((r) => r.figure.startsWith(prefix))!.hookline.replace(/,/g, ""));
    expect(figure("WAL bytes per delivered event")).toBeGreaterThan(0);
    expect(figure("Rows inserted per delivered event")).toBeGreaterThanOrEqual(1);
    expect(figure("Statements per event at 10/s")).toBeGreaterThanOrEqual(1);
    const deliveries = result.rows.find((r) => r.figure.startsWith("Deliveries/s"))!;
    expect(deliveries.baseline).toMatch(/^[\d,.]+$/);
    expect(result.notes.join("\n")).toMatch(/\d+ sampled deliveries were verified/);
    expect(result.notes.join("\n")).not.toMatch(/did not verify|duplicate/);
    // The watchers following the benchmark tenant received its updates.
    expect(result.notes.join("\n")).toMatch(/[1-9][\d,]* status updates were streamed to 20 watchers/);
    expect(toMarkdown(result)).toContain("| figure | Hookline | baseline |");
  }, 300_000);
});

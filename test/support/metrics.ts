/**
 * Reading Hookline's GET /metrics in tests: Prometheus text as a map from
 * each series (name and labels, as written) to its value.
 */

/** Scrapes `${baseUrl}/metrics`; fails unless it answers 200 with Prometheus text. */
export async function scrapeMetrics(baseUrl: string): Promise<Map<string, number>> {
  const res = await fetch(`${baseUrl}/metrics`);
  const type = res.headers.get("content-type") ?? "";
  if (res.status !== 200 || !type.startsWith("text/plain")) {
    throw new Error(`GET /metrics answered ${res.status} ${type}: ${await res.text()}`);
  }
  const values = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    values.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return values;
}

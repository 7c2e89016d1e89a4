/**
 * Summarises a V8 CPU profile (`node --cpu-prof`): self time by function and
 * by package or source folder, and total (inclusive) time of the functions
 * that take most. Usage: node --import tsx bench/profile-summary.ts FILE [N]
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
  children?: number[];
}
const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error("usage: profile-summary.ts FILE [N]");
const top = Number(topArg ?? 30);
const profile = JSON.parse(readFileSync(file, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const self = new Map<number, number>();
profile.samples.forEach((id, i) => {
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
});
const totalUs = [...self.values()].reduce((a, b) => a + b, 0);

const where = (url: string) => {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1]!;
  const s = /\/(src|dist\/src)\/(.*)\/[^/]*$/.exec(url);
  if (s) return `src/${s[2]}/${url.replace(/^.*\//, "")}`;
  if (url.startsWith("node:")) return url;
  return url === "" ? "(native)" : url.replace(/^.*\//, "");
};
const label = (n: Node) => `${n.callFrame.functionName || "(anonymous)"} ${where(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);

const selfByFn = new Map<string, number>();
const selfByPlace = new Map<string, number>();
const inclusive = new Map<string, number>();
for (const [id, us] of self) {
  const n = byId.get(id)!;
  add(selfByFn, label(n), us);
  add(selfByPlace, where(n.callFrame.url), us);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(byId.get(cur)!);
    if (!seen.has(l)) {
      seen.add(l);
      add(inclusive, l, us);
    }
  }
}
const show = (title: string, m: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((100 * v) / totalUs).toFixed(1).padStart(6)}%  ${k}`);
};
console.log(`${(totalUs / 1000).toFixed(0)} ms sampled`);
show("self, by package or folder", selfByPlace);
show("self, by function", selfByFn);
show("inclusive, by function", inclusive);

// With a third argument, a function name: which of our own frames
// (src/) its samples came through, nearest first.
const under = process.argv[4];
if (under) {
  const callers = new Map<string, number>();
  for (const [id, us] of self) {
    const chain: Node[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) chain.push(byId.get(cur)!);
    const at = chain.findIndex((n) => n.callFrame.functionName === under);
    if (at < 0) continue;
    const ours = chain.slice(at).filter((n) => where(n.callFrame.url).startsWith("src/")).slice(0, 3).map(label);
    add(callers, ours.join(" < ") || "(none of ours)", us);
  }
  show(`${under}: through`, callers);
}

// With a fourth argument, a package or folder (as in "self, by package"):
// which of our own frames its self time came through.
const pkg = process.argv[5];
if (pkg) {
  const callers = new Map<string, number>();
  for (const [id, us] of self) {
    const n0 = byId.get(id)!;
    if (where(n0.callFrame.url) !== pkg) continue;
    const chain: Node[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) chain.push(byId.get(cur)!);
    const ours = chain.filter((n) => where(n.callFrame.url).startsWith("src/")).slice(0, 2).map(label);
    add(callers, ours.join(" < ") || "(none of ours)", us);
  }
  show(`${pkg}: through`, callers);
}

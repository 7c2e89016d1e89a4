/**
 * Hostile destinations, as a table: loopback, private, link-local (cloud
 * metadata), carrier-grade NAT, benchmarking, multicast and broadcast
 * addresses in every notation a URL accepts (short, decimal, hex, octal,
 * full-width), their IPv6 and IPv4-mapped forms, and names whose DNS answer
 * is one of them. With nothing allow-listed each is refused twice: by
 * CreateEndpoint, when it needs no DNS to know, and by the real HttpClient
 * and AddressGuard at delivery, before any connection. Beyond the table: a
 * name answering public and private addresses at once, a DNS answer that
 * changes between two resolutions (rebinding), and redirects to private
 * addresses, which are never followed.
 *
 * Nothing leaves this host. Every row aims at a trap listening on
 * 127.0.0.1 and ::1 that counts connections, and a tripwire under every
 * socket (test/support/tripwire.ts) records the addresses sockets are handed
 * and stops any beyond loopback, so a failing guard could not reach
 * 10.0.0.1 either. Public addresses (203.0.113.10, a documentation address
 * the guard treats as public) only ever appear in fixed DNS answers.
 */
import type { LookupAddress } from "node:dns";
import net, { type AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { AddressGuard } from "../../src/delivery/address-guard.js";
import { HttpClient, type HttpResult, type Resolver } from "../../src/delivery/http-client.js";
import { report } from "../support/chaos.js";
import { client } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { startTestHookline, type TestHookline } from "../support/hookline.js";
import { type Receiver, startReceiver } from "../support/receiver.js";
import { armTripwire, type Tripwire } from "../support/tripwire.js";

/** One hostile destination. */
interface Destination {
  name: string;
  /** The endpoint URL; PORT becomes the trap's port. */
  url: string;
  /**
   * How its host becomes an address: written in the URL (in whatever
   * notation), by the system resolver (`localhost`, from /etc/hosts), or by a
   * DNS answer the test fixes (these addresses).
   */
  resolved: "literal" | "system resolver" | readonly string[];
  /** The refusal the guard gives, naming the blocked range. */
  reason: RegExp;
}

const LOOPBACK = /127\.0\.0\.1 is in 127\.0\.0\.0\/8 \(loopback\)/;
/** At creation "localhost always resolves to loopback (...)", at delivery "localhost resolves to blocked addresses only: ...". */
const LOCALHOST = /localhost (always )?resolves to .*(127\.0\.0\.0\/8|::1)/;
const LOOPBACK_REASON = "127.0.0.1 is in 127.0.0.0/8 (loopback), which is blocked; allow it with HOOKLINE_ALLOWED_CIDRS";

const TABLE: readonly Destination[] = [
  { name: "loopback", url: "http://127.0.0.1:PORT/hook", resolved: "literal", reason: LOOPBACK },
  { name: "loopback, short form", url: "http://127.1:PORT/hook", resolved: "literal", reason: LOOPBACK },
  { name: "loopback, decimal", url: "http://2130706433:PORT/hook", resolved: "literal", reason: LOOPBACK },
  { name: "loopback, hexadecimal", url: "http://0x7f000001:PORT/hook", resolved: "literal", reason: LOOPBACK },
  { name: "loopback, octal", url: "http://0177.0.0.1:PORT/hook", resolved: "literal", reason: LOOPBACK },
  { name: "loopback, full-width digits", url: "http://１２７.０.０.１:PORT/hook", resolved: "literal", reason: LOOPBACK },
  { name: "loopback, trailing dot", url: "http://127.0.0.1.:PORT/hook", resolved: "literal", reason: LOOPBACK },
  { name: "this network, as 0", url: "http://0:PORT/hook", resolved: "literal", reason: /0\.0\.0\.0 is in 0\.0\.0\.0\/8 \(this network\)/ },
  { name: "this network", url: "http://0.0.0.0:PORT/hook", resolved: "literal", reason: /0\.0\.0\.0 is in 0\.0\.0\.0\/8/ },
  { name: "private 10/8", url: "http://10.0.0.1:PORT/hook", resolved: "literal", reason: /10\.0\.0\.1 is in 10\.0\.0\.0\/8 \(private\)/ },
  { name: "private 172.16/12", url: "http://172.16.0.1:PORT/hook", resolved: "literal", reason: /172\.16\.0\.0\/12 \(private\)/ },
  { name: "private 192.168/16", url: "http://192.168.1.1:PORT/hook", resolved: "literal", reason: /192\.168\.0\.0\/16 \(private\)/ },
  {
    name: "cloud metadata",
    url: "http://169.254.169.254:PORT/latest/meta-data/",
    resolved: "literal",
    reason: /169\.254\.0\.0\/16 \(link-local, cloud metadata\)/,
  },
  { name: "carrier-grade NAT", url: "http://100.64.0.1:PORT/hook", resolved: "literal", reason: /100\.64\.0\.0\/10 \(carrier-grade NAT\)/ },
  { name: "Alibaba Cloud metadata (CGNAT)", url: "http://100.100.100.200:PORT/latest/meta-data/", resolved: "literal", reason: /100\.64\.0\.0\/10/ },
  { name: "Oracle Cloud Classic metadata", url: "http://192.0.0.192:PORT/latest/", resolved: "literal", reason: /192\.0\.0\.0\/24 \(IETF protocol assignments\)/ },
  { name: "Azure host endpoint (WireServer)", url: "http://168.63.129.16:PORT/machine", resolved: "literal", reason: /168\.63\.129\.16\/32 \(Azure host endpoint\)/ },
  { name: "benchmarking", url: "http://198.18.0.1:PORT/hook", resolved: "literal", reason: /198\.18\.0\.0\/15 \(benchmarking\)/ },
  { name: "multicast", url: "http://224.0.0.1:PORT/hook", resolved: "literal", reason: /224\.0\.0\.0\/4 \(multicast\)/ },
  { name: "broadcast", url: "http://255.255.255.255:PORT/hook", resolved: "literal", reason: /240\.0\.0\.0\/4 \(reserved, broadcast\)/ },
  { name: "IPv6 loopback", url: "http://[::1]:PORT/hook", resolved: "literal", reason: /::1 is in ::1\/128 \(loopback\)/ },
  { name: "IPv6 unspecified", url: "http://[::]:PORT/hook", resolved: "literal", reason: /:: is in ::\/128 \(unspecified\)/ },
  {
    name: "IPv4-mapped loopback, dotted",
    url: "http://[::ffff:127.0.0.1]:PORT/hook",
    resolved: "literal",
    reason: /::ffff:7f00:1 is the IPv4-mapped form of 127\.0\.0\.1, which is in 127\.0\.0\.0\/8/,
  },
  { name: "IPv4-mapped loopback, hex", url: "http://[::ffff:7f00:1]:PORT/hook", resolved: "literal", reason: /IPv4-mapped form of 127\.0\.0\.1/ },
  {
    name: "IPv4-mapped cloud metadata",
    url: "http://[::ffff:169.254.169.254]:PORT/latest/meta-data/",
    resolved: "literal",
    reason: /IPv4-mapped form of 169\.254\.169\.254, which is in 169\.254\.0\.0\/16/,
  },
  { name: "IPv6 unique local", url: "http://[fc00::1]:PORT/hook", resolved: "literal", reason: /fc00::1 is in fc00::\/7 \(unique local\)/ },
  { name: "AWS IPv6 metadata", url: "http://[fd00:ec2::254]:PORT/latest/meta-data/", resolved: "literal", reason: /fc00::\/7 \(unique local\)/ },
  { name: "IPv6 link-local", url: "http://[fe80::1]:PORT/hook", resolved: "literal", reason: /fe80::1 is in fe80::\/10 \(link-local\)/ },
  { name: "IPv6 site-local (deprecated)", url: "http://[fec0::1]:PORT/hook", resolved: "literal", reason: /fec0::\/10 \(site-local \(deprecated\)\)/ },
  { name: "Teredo", url: "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]:PORT/hook", resolved: "literal", reason: /2001::\/32 \(Teredo\)/ },
  { name: "IPv6 multicast", url: "http://[ff02::1]:PORT/hook", resolved: "literal", reason: /ff02::1 is in ff00::\/8 \(multicast\)/ },
  { name: "NAT64 form of cloud metadata", url: "http://[64:ff9b::a9fe:a9fe]:PORT/hook", resolved: "literal", reason: /NAT64 form of 169\.254\.169\.254/ },
  { name: "6to4 form of loopback", url: "http://[2002:7f00:1::]:PORT/hook", resolved: "literal", reason: /6to4 form of 127\.0\.0\.1/ },
  { name: "localhost", url: "http://localhost:PORT/hook", resolved: "system resolver", reason: LOCALHOST },
  { name: "localhost in enclosed letters (IDNA)", url: "http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ:PORT/hook", resolved: "system resolver", reason: LOCALHOST },
  { name: "a name for 127.0.0.1 (localtest.me style)", url: "http://loopback.hookline.test:PORT/hook", resolved: ["127.0.0.1"], reason: LOOPBACK },
  { name: "a name for 10.x", url: "http://private.hookline.test:PORT/hook", resolved: ["10.1.2.3"], reason: /10\.1\.2\.3 is in 10\.0\.0\.0\/8/ },
  {
    name: "a name for cloud metadata (metadata.google.internal style)",
    url: "http://metadata.hookline.test:PORT/computeMetadata/v1/",
    resolved: ["169.254.169.254"],
    reason: /169\.254\.0\.0\/16/,
  },
  { name: "a name for ::1 only", url: "http://six.hookline.test:PORT/hook", resolved: ["::1"], reason: /::1\/128 \(loopback\)/ },
  {
    name: "a name for an IPv4-mapped private address",
    url: "http://mapped.hookline.test:PORT/hook",
    resolved: ["::ffff:192.168.1.1"],
    reason: /IPv4-mapped form of 192\.168\.1\.1/,
  },
  {
    name: "a name for several private addresses",
    url: "http://intranet.hookline.test:PORT/hook",
    resolved: ["10.0.0.1", "172.16.0.1", "192.168.1.1", "fc00::1"],
    reason: /10\.0\.0\.0\/8.*172\.16\.0\.0\/12.*192\.168\.0\.0\/16.*fc00::\/7/,
  },
];

/** The address the guard treats as public in fixed DNS answers: TEST-NET-3, never routed, and stopped by the tripwire anyway. */
const PUBLIC = "203.0.113.10";
const BODY = '{"type":"ping"}';

let tripwire: Tripwire;
let trap: Trap;
/** Totals for the report. */
const tally = { destinations: 0, refused: 0, refusedAtCreation: 0, connectionsMade: 0 };

beforeAll(async () => {
  tripwire = armTripwire();
  trap = await startTrap();
});

afterAll(async () => {
  await trap?.close();
  tripwire?.disarm();
  report("ssrf", {
    destinations: tally.destinations,
    refused: tally.refused,
    "refused at creation": tally.refusedAtCreation,
    "connections made": tally.connectionsMade,
  });
});

/** A TCP server on 127.0.0.1 and ::1, one port, that counts connections and answers none. */
interface Trap {
  port: number;
  connections(): number;
  close(): Promise<void>;
}

async function startTrap(): Promise<Trap> {
  let connections = 0;
  const listen = (host: string, port: number) =>
    new Promise<net.Server>((resolve, reject) => {
      const server = net.createServer((socket) => {
        connections++;
        socket.destroy();
      });
      server.once("error", reject).listen(port, host, () => resolve(server));
    });
  for (let tries = 0; ; tries++) {
    const v4 = await listen("127.0.0.1", 0);
    const { port } = v4.address() as AddressInfo;
    try {
      const v6 = await listen("::1", port);
      return {
        port,
        connections: () => connections,
        close: async () => {
          await Promise.all([v4, v6].map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
        },
      };
    } catch (err) {
      // The port was free on 127.0.0.1 but not on ::1: take another.
      await new Promise<void>((resolve) => v4.close(() => resolve()));
      if (tries === 5) throw err;
    }
  }
}

/** Fixed DNS answers by name (one list per call, the last repeating); other names fail as NXDOMAIN would, so nothing asks real DNS. */
function fixedResolver(answers: Record<string, readonly (readonly string[])[]>): { resolve: Resolver; calls: string[] } {
  const calls: string[] = [];
  const resolve: Resolver = (hostname, _options, callback) => {
    const n = calls.filter((c) => c === hostname).length;
    calls.push(hostname);
    const script = answers[hostname];
    setImmediate(() => {
      if (!script) {
        callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }), []);
        return;
      }
      const answer = script[Math.min(n, script.length - 1)]!;
      callback(
        null,
        answer.map((address): LookupAddress => ({ address, family: net.isIP(address) })),
      );
    });
  };
  return { resolve, calls };
}

/** An AddressGuard that records every address it is asked about. */
function recordingGuard(allowedCidrs: readonly string[] = []): { guard: AddressGuard; judged: string[] } {
  const guard = new AddressGuard(allowedCidrs);
  const judged: string[] = [];
  const check = guard.check.bind(guard);
  guard.check = (ip) => {
    judged.push(ip);
    return check(ip);
  };
  return { guard, judged };
}

/** What one delivery attempt did: its result, and every address handed to a socket meanwhile. */
async function attempt(
  url: string,
  guard: AddressGuard,
  resolve?: Resolver,
): Promise<{ result: HttpResult; handed: { address: string; port: number }[]; trapped: number }> {
  const http = new HttpClient({ bodyLimit: 1024, guard, resolve });
  const handedBefore = tripwire.handed.length;
  const trappedBefore = trap.connections();
  try {
    const result = await http.post(new URL(url), { "content-type": "application/json" }, BODY, 2_000);
    return { result, handed: tripwire.handed.slice(handedBefore), trapped: trap.connections() - trappedBefore };
  } finally {
    await http.destroy();
  }
}

/** Connections to hostile addresses in an attempt: accepted by the trap, or handed to a socket although a closed guard refuses them. */
function hostileConnections(outcome: { handed: { address: string }[]; trapped: number }): number {
  const closed = new AddressGuard([]);
  return outcome.trapped + outcome.handed.filter((h) => closed.check(h.address) !== undefined).length;
}

const withPort = (url: string) => url.replace("PORT", String(trap.port));
const needsNoDns = (d: Destination) => d.resolved === "literal" || d.resolved === "system resolver";

describe("the table", () => {
  it("has at least 25 destinations, each once", () => {
    expect(TABLE.length).toBeGreaterThanOrEqual(25);
    expect(new Set(TABLE.map((d) => d.url)).size).toBe(TABLE.length);
    tally.destinations += TABLE.length;
  });
});

describe("at creation, with nothing allowed", () => {
  let db: TestDatabase;
  let app: TestHookline;
  let admin: ReturnType<typeof client<typeof WebhookAdmin>>;
  let existingId: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    app = await startTestHookline(db.url, { HOOKLINE_ALLOWED_CIDRS: "" });
    admin = client(WebhookAdmin, "connect-http1", app.url);
    // A public name, accepted, to change with UpdateEndpoint. No event is
    // ever published here, so nothing is delivered or resolved.
    existingId = (await admin.createEndpoint({ tenantId: "ssrf", url: "https://hooks.example.com/in" })).endpoint!.id;
  });

  afterAll(async () => {
    await app?.stop();
    await db?.drop();
  });

  async function refusal(call: Promise<unknown>): Promise<ConnectError> {
    const err = await call.then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err, "the call should fail").toBeInstanceOf(ConnectError);
    return err!;
  }

  it.each(TABLE.filter(needsNoDns).map((d) => [d.name, d] as const))(
    "CreateEndpoint and UpdateEndpoint refuse %s with InvalidArgument naming the url field",
    async (_name, d) => {
      const url = withPort(d.url);
      const created = await refusal(admin.createEndpoint({ tenantId: "ssrf", url }));
      expect(Code[created.code]).toBe("InvalidArgument");
      expect(created.rawMessage).toMatch(/^url: /);
      expect(created.rawMessage).toMatch(d.reason);
      expect(created.rawMessage).toContain("allow it with HOOKLINE_ALLOWED_CIDRS");

      const updated = await refusal(admin.updateEndpoint({ endpoint: { id: existingId, url }, updateMask: { paths: ["url"] } }));
      expect(Code[updated.code]).toBe("InvalidArgument");
      expect(updated.rawMessage).toMatch(/^endpoint\.url: /);
      expect(updated.rawMessage).toMatch(d.reason);

      // Nothing stored: no endpoint with the URL, and the existing one unchanged.
      const [{ n }] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM endpoints WHERE url = $1", [new URL(url).toString()]);
      expect(n).toBe(0);
      const [existing] = await db.query<{ url: string }>("SELECT url FROM endpoints WHERE id = $1", [existingId]);
      expect(existing?.url).toBe("https://hooks.example.com/in");
      tally.refusedAtCreation++;
    },
  );

  it.each(TABLE.filter((d) => !needsNoDns(d)).map((d) => [d.name, d] as const))(
    "CreateEndpoint accepts %s, whose name is judged by address at every connection",
    async (_name, d) => {
      const { endpoint } = await admin.createEndpoint({ tenantId: "ssrf-names", url: withPort(d.url) });
      expect(endpoint?.url).toBe(new URL(withPort(d.url)).toString());
    },
  );
});

describe("at delivery, with nothing allowed", () => {
  it.each(TABLE.map((d) => [d.name, d] as const))("refuses %s before connecting", async (_name, d) => {
    const dns = fixedResolver(Array.isArray(d.resolved) ? { [new URL(withPort(d.url)).hostname]: [d.resolved] } : {});
    const { guard, judged } = recordingGuard();
    const outcome = await attempt(withPort(d.url), guard, d.resolved === "system resolver" ? undefined : dns.resolve);
    tally.connectionsMade += hostileConnections(outcome);

    expect(outcome.result.status).toBe(0);
    expect(outcome.result.error?.class).toBe("ssrf");
    expect(outcome.result.error?.message).toMatch(d.reason);
    expect(outcome.result.error?.message).toContain("allow it with HOOKLINE_ALLOWED_CIDRS");
    // No socket was handed an address, so none connected anywhere.
    expect(outcome.handed).toEqual([]);
    expect(outcome.trapped).toBe(0);
    if (d.resolved === "literal") {
      // Judged as written, without DNS.
      expect(dns.calls).toEqual([]);
      expect(judged).toHaveLength(1);
    } else if (Array.isArray(d.resolved)) {
      // Resolved once, and every address of the answer judged.
      expect(dns.calls).toHaveLength(1);
      expect(new Set(judged)).toEqual(new Set(d.resolved));
    }
    tally.refused++;
  });
});

describe("beyond the table", () => {
  it("the tripwire sees the client's sockets, and stops one bound beyond this host", async () => {
    // Without this, an empty `handed` above could mean the tripwire saw nothing.
    const dns = fixedResolver({ "public.hookline.test": [[PUBLIC]] });
    const byName = await attempt(`http://public.hookline.test:${trap.port}/`, new AddressGuard([]), dns.resolve);
    expect(byName.handed).toEqual([{ address: PUBLIC, port: trap.port }]);
    expect(byName.result.error?.message).toMatch(/tripwire: 203\.0\.113\.10 is beyond this host/);
    const byAddress = await attempt(`http://${PUBLIC}:${trap.port}/`, new AddressGuard([]));
    expect(byAddress.handed).toEqual([{ address: PUBLIC, port: trap.port }]);
    const allowed = await attempt(`http://127.0.0.1:${trap.port}/`, new AddressGuard(["127.0.0.1"]));
    expect(allowed.handed).toEqual([{ address: "127.0.0.1", port: trap.port }]);
    expect(allowed.trapped).toBe(1);
  });

  it("a name answering public and private addresses at once: the private ones are refused, never handed to a socket", async () => {
    const dns = fixedResolver({ "mixed.hookline.test": [[PUBLIC, "10.0.0.1", "169.254.169.254", "::1"]] });
    const { guard, judged } = recordingGuard();
    const outcome = await attempt(`http://mixed.hookline.test:${trap.port}/hook`, guard, dns.resolve);
    tally.destinations++;
    tally.connectionsMade += hostileConnections(outcome);
    expect(new Set(judged)).toEqual(new Set([PUBLIC, "10.0.0.1", "169.254.169.254", "::1"]));
    // Only the public address went on to a socket (and the tripwire stopped that one).
    expect(outcome.handed).toEqual([{ address: PUBLIC, port: trap.port }]);
    expect(outcome.trapped).toBe(0);
    tally.refused++;
  });

  it("DNS rebinding: each connection resolves once and connects to the very answer it judged", async () => {
    // The answer changes between two resolutions: public first, loopback
    // after. A client that resolved once to check and again to connect
    // would judge 203.0.113.10 and then connect to 127.0.0.1 (the trap).
    const dns = fixedResolver({ "rebind.hookline.test": [[PUBLIC], ["127.0.0.1"]] });
    const { guard, judged } = recordingGuard();
    const url = `http://rebind.hookline.test:${trap.port}/hook`;

    tally.destinations++;
    const first = await attempt(url, guard, dns.resolve);
    tally.connectionsMade += hostileConnections(first);
    expect(dns.calls).toHaveLength(1);
    expect(judged).toEqual([PUBLIC]);
    expect(first.handed).toEqual([{ address: PUBLIC, port: trap.port }]);

    const second = await attempt(url, guard, dns.resolve);
    tally.connectionsMade += hostileConnections(second);
    expect(dns.calls).toHaveLength(2);
    expect(second.result.error).toEqual({
      class: "ssrf",
      message: `rebind.hookline.test resolves to blocked addresses only: ${LOOPBACK_REASON}`,
    });
    expect(second.handed).toEqual([]);
    expect(first.trapped + second.trapped).toBe(0);
    tally.refused++;
  });

  it("the address judged by the lookup is the socket's, and is judged again on the connected socket", async () => {
    // Loopback allowed, so the connection is made: the guard hears of the
    // answer, then of the connected socket's remote address, and they agree.
    const dns = fixedResolver({ "echo.hookline.test": [["127.0.0.1"]] });
    const { guard, judged } = recordingGuard(["127.0.0.1"]);
    const outcome = await attempt(`http://echo.hookline.test:${trap.port}/`, guard, dns.resolve);
    expect(outcome.handed).toEqual([{ address: "127.0.0.1", port: trap.port }]);
    expect(judged).toEqual(["127.0.0.1", "127.0.0.1"]);
    expect(outcome.trapped).toBe(1);
  });

  describe("redirects to private addresses, from a receiver on 127.0.0.1 (allowed for that one hop)", () => {
    let receiver: Receiver;
    beforeAll(async () => {
      receiver = await startReceiver();
    });
    afterAll(async () => {
      await receiver?.close();
    });

    it.each([
      [302, "http://169.254.169.254/latest/meta-data/iam/security-credentials/"],
      [307, "http://127.0.0.1:PORT/admin"],
      [308, "http://10.0.0.1/admin"],
    ])("are not followed: %i to %s", async (status, location) => {
      const target = withPort(location);
      receiver.reply(() => ({ status, headers: { Location: target }, body: "moved" }));
      const before = receiver.requests.length;
      // Only the receiver's address is allowed; 127.0.0.1 opens the trap
      // too, so a followed redirect would show there.
      tally.destinations++;
      const outcome = await attempt(`${receiver.url}/hook`, new AddressGuard(["127.0.0.1"]));
      // Followed, the redirect would have reached the trap, or handed a socket another address than the receiver's.
      tally.connectionsMade += outcome.trapped + outcome.handed.filter((h) => h.address !== "127.0.0.1").length;
      expect(outcome.result).toMatchObject({
        status,
        error: { class: "http", message: `HTTP ${status}: redirects are not followed (to ${target})` },
      });
      expect(receiver.requests.length - before).toBe(1);
      expect(outcome.handed.map((h) => h.address)).toEqual(["127.0.0.1"]);
      expect(outcome.handed[0]!.port).not.toBe(trap.port);
      expect(outcome.trapped).toBe(0);
      tally.refused++;
    });
  });

  it("nothing in this file was bound beyond this host but the public answers above", () => {
    expect(tripwire.stopped.length).toBeGreaterThan(0);
    expect(tripwire.stopped.filter((s) => s.address !== PUBLIC)).toEqual([]);
  });
});

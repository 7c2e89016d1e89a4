/**
 * The SSRF guard in-process: hostile destinations are refused without an
 * allow-list, public ones pass, and an allowed range opens exactly itself.
 * Nothing here opens a connection.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";
import { AddressGuard, parseAllowedCidrs } from "../../src/delivery/address-guard.js";

const closed = new AddressGuard([]);

/** Judges `target`: a URL (as an endpoint would be created) or an IP address (as connected to). */
function judge(guard: AddressGuard, target: string): string | undefined {
  return target.includes("://") ? guard.neverAllowed(new URL(target)) : guard.check(target);
}

describe("AddressGuard", () => {
  const hostile: [target: string, range: RegExp][] = [
    ["127.0.0.1", /127\.0\.0\.0\/8 \(loopback\)/],
    ["127.255.255.254", /127\.0\.0\.0\/8/],
    ["::1", /::1\/128 \(loopback\)/],
    ["10.0.0.1", /10\.0\.0\.0\/8 \(private\)/],
    ["10.255.255.255", /10\.0\.0\.0\/8/],
    ["172.16.0.1", /172\.16\.0\.0\/12 \(private\)/],
    ["172.31.255.254", /172\.16\.0\.0\/12/],
    ["192.168.1.1", /192\.168\.0\.0\/16 \(private\)/],
    ["169.254.169.254", /169\.254\.0\.0\/16 \(link-local, cloud metadata\)/],
    ["100.64.0.1", /100\.64\.0\.0\/10 \(carrier-grade NAT\)/],
    ["100.127.255.254", /100\.64\.0\.0\/10/],
    ["192.0.0.170", /192\.0\.0\.0\/24/],
    ["198.18.0.1", /198\.18\.0\.0\/15 \(benchmarking\)/],
    ["198.19.255.254", /198\.18\.0\.0\/15/],
    ["224.0.0.1", /224\.0\.0\.0\/4 \(multicast\)/],
    ["239.255.255.250", /224\.0\.0\.0\/4/],
    ["240.0.0.1", /240\.0\.0\.0\/4 \(reserved, broadcast\)/],
    ["255.255.255.255", /240\.0\.0\.0\/4/],
    ["0.0.0.0", /0\.0\.0\.0\/8/],
    ["0.1.2.3", /0\.0\.0\.0\/8/],
    ["::", /::\/128 \(unspecified\)/],
    ["::ffff:127.0.0.1", /IPv4-mapped form of 127\.0\.0\.1, which is in 127\.0\.0\.0\/8/],
    ["::ffff:7f00:1", /IPv4-mapped form of 127\.0\.0\.1/],
    ["::ffff:a9fe:a9fe", /IPv4-mapped form of 169\.254\.169\.254/],
    ["64:ff9b::a9fe:a9fe", /NAT64 form of 169\.254\.169\.254/],
    ["64:ff9b:1::a00:1", /64:ff9b:1::\/48 \(local-use NAT64\)/],
    ["2002:7f00:1::1", /6to4 form of 127\.0\.0\.1/],
    ["2002:a00:1::", /6to4 form of 10\.0\.0\.1/],
    ["::7f00:1", /IPv4-compatible form of 127\.0\.0\.1/],
    ["fe80::1", /fe80::\/10 \(link-local\)/],
    ["fe80::1%eth0", /fe80::\/10/],
    ["fc00::1", /fc00::\/7 \(unique local\)/],
    ["fd12:3456:789a::1", /fc00::\/7/],
    ["ff02::1", /ff00::\/8 \(multicast\)/],
    ["not-an-ip", /is not an IP address/],
    // Endpoint URLs: the URL parser turns every IPv4 notation into dotted decimal.
    ["http://127.0.0.1:8080/hook", /127\.0\.0\.0\/8/],
    ["http://2130706433/", /127\.0\.0\.1 is in 127\.0\.0\.0\/8/],
    ["http://0177.0.0.1/", /127\.0\.0\.1 is in 127\.0\.0\.0\/8/],
    ["http://0x7f000001/", /127\.0\.0\.1 is in 127\.0\.0\.0\/8/],
    ["http://0x7f.1/", /127\.0\.0\.1 is in 127\.0\.0\.0\/8/],
    ["http://127.1/", /127\.0\.0\.1 is in 127\.0\.0\.0\/8/],
    ["http://169.254.169.254/latest/meta-data/", /169\.254\.0\.0\/16/],
    ["https://[::1]/", /::1\/128/],
    ["https://[::ffff:127.0.0.1]/", /IPv4-mapped form of 127\.0\.0\.1/],
    ["http://[::ffff:a00:1]:8080/", /IPv4-mapped form of 10\.0\.0\.1/],
    ["https://[fd00::1]/", /fc00::\/7/],
    ["http://0.0.0.0:80/", /0\.0\.0\.0\/8/],
    ["http://localhost:3000/", /localhost always resolves to loopback/],
    ["http://LOCALHOST./", /always resolves to loopback/],
    ["http://api.localhost/", /api\.localhost always resolves to loopback/],
  ];

  it.each(hostile)("refuses %s without an allow-list, naming the range and the way to allow it", (target, range) => {
    const reason = judge(closed, target);
    expect(reason).toMatch(range);
    if (!/not an IP address/.test(reason!)) expect(reason).toMatch(/HOOKLINE_ALLOWED_CIDRS/);
  });

  it.each([
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "2606:4700::1111",
    "2001:4860:4860::8888",
    "::ffff:93.184.216.34",
    "64:ff9b::808:808",
    "2002:5db8:d822::1",
    "100.128.0.1",
    "172.32.0.1",
    "198.20.0.1",
  ])("allows the public address %s", (ip) => {
    expect(closed.check(ip)).toBeUndefined();
  });

  it.each([
    "https://hooks.example.com/in",
    "https://93.184.216.34/in",
    "https://[2606:4700::1111]/in",
    // Names that need DNS are judged at connect time, by address.
    "http://metadata.google.internal/",
    "http://localhost.example.com/",
  ])("lets an endpoint be created for %s", (url) => {
    expect(closed.neverAllowed(new URL(url))).toBeUndefined();
  });

  it("opens exactly the allowed range, and its IPv6 forms", () => {
    const guard = new AddressGuard(parseAllowedCidrs("10.1.0.0/16"));
    expect(guard.check("10.1.0.1")).toBeUndefined();
    expect(guard.check("10.1.255.255")).toBeUndefined();
    expect(guard.check("::ffff:10.1.2.3")).toBeUndefined();
    expect(guard.check("10.0.255.255")).toMatch(/10\.0\.0\.0\/8/);
    expect(guard.check("10.2.0.0")).toMatch(/10\.0\.0\.0\/8/);
    expect(guard.check("127.0.0.1")).toMatch(/127\.0\.0\.0\/8/);
    expect(guard.check("169.254.169.254")).toMatch(/169\.254\.0\.0\/16/);
  });

  it("allows loopback names once loopback is allowed, as tests and local development do", () => {
    const v4 = new AddressGuard(["127.0.0.0/8"]);
    expect(v4.check("127.0.0.1")).toBeUndefined();
    expect(v4.check("::1")).toMatch(/::1\/128/);
    expect(v4.neverAllowed(new URL("http://localhost:8080/"))).toBeUndefined();
    expect(v4.neverAllowed(new URL("http://2130706433/"))).toBeUndefined();
    const v6 = new AddressGuard(["::1"]);
    expect(v6.check("::1")).toBeUndefined();
    expect(v6.check("127.0.0.1")).toMatch(/127\.0\.0\.0\/8/);
    expect(v6.neverAllowed(new URL("http://localhost/"))).toBeUndefined();
  });

  it("allows an IPv6 range exactly", () => {
    const guard = new AddressGuard(["fd00:1::/64"]);
    expect(guard.check("fd00:1::5")).toBeUndefined();
    expect(guard.check("fd00:2::5")).toMatch(/fc00::\/7/);
  });
});

describe("parseAllowedCidrs", () => {
  it("parses, trims and normalises ranges; a bare address is a range of one", () => {
    expect(parseAllowedCidrs("")).toEqual([]);
    expect(parseAllowedCidrs(" 127.0.0.0/8 , ::1 ,10.1.2.3/16,192.168.1.20, FD00::/8,")).toEqual([
      "127.0.0.0/8",
      "::1/128",
      "10.1.0.0/16",
      "192.168.1.20/32",
      "fd00::/8",
    ]);
  });

  it.each(["10.0.0.0/33", "::/129", "10.0.0/8", "0x0a.0.0.0/8", "localhost", "10.0.0.0/8/8", "10.0.0.0/-1", "10.0.0.0/", "fe80::1%eth0/64"])(
    "rejects %s, naming it",
    (entry) => {
      expect(() => parseAllowedCidrs(`127.0.0.0/8,${entry}`)).toThrow(`"${entry}" is not a CIDR range`);
    },
  );
});

describe("HOOKLINE_ALLOWED_CIDRS", () => {
  it("allows nothing by default, and reads a list of ranges", () => {
    expect(loadConfig({}).allowedCidrs).toEqual([]);
    expect(loadConfig({ HOOKLINE_ALLOWED_CIDRS: "" }).allowedCidrs).toEqual([]);
    expect(loadConfig({ HOOKLINE_ALLOWED_CIDRS: "127.0.0.0/8,::1" }).allowedCidrs).toEqual(["127.0.0.0/8", "::1/128"]);
  });

  it("stops the start on a bad entry, naming the variable and the entry", () => {
    expect(() => loadConfig({ HOOKLINE_ALLOWED_CIDRS: "127.0.0.0/8,intranet" })).toThrow(ConfigError);
    expect(() => loadConfig({ HOOKLINE_ALLOWED_CIDRS: "127.0.0.0/8,intranet" })).toThrow(
      'HOOKLINE_ALLOWED_CIDRS=127.0.0.0/8,intranet: "intranet" is not a CIDR range',
    );
  });
});

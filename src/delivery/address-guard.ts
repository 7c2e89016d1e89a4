/**
 * The SSRF guard: which network addresses webhook deliveries may reach.
 *
 * Private, loopback, link-local (cloud metadata), multicast and reserved
 * ranges are blocked unless the operator allows them (HOOKLINE_ALLOWED_CIDRS).
 * The HTTP client asks the guard about every address it is about to connect
 * to, after DNS; endpoint creation asks it only about what needs no DNS (IP
 * literals and the `localhost` names), since a name can resolve differently
 * at delivery time.
 */
import ipaddr from "ipaddr.js";
import type { DestinationCheck } from "../domain/endpoints.js";

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Cidr = [Address, number];

/** A range with the name shown in refusals. */
interface NamedRange {
  cidr: Cidr;
  /** Normalised CIDR text, e.g. `127.0.0.0/8`. */
  text: string;
  label: string;
}

/** Blocked unless allowed: the ranges of SPEC-NOTES "Addresses an outbound webhook must not reach". */
const BLOCKED: readonly (readonly [cidr: string, label: string])[] = [
  ["0.0.0.0/8", "this network"],
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "carrier-grade NAT"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local, cloud metadata"],
  ["172.16.0.0/12", "private"],
  ["192.0.0.0/24", "IETF protocol assignments"],
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "benchmarking"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved, broadcast"],
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["fc00::/7", "unique local"],
  ["fe80::/10", "link-local"],
  ["ff00::/8", "multicast"],
  // Local-use NAT64 (RFC 8215) may embed an IPv4 address at any of several
  // offsets, so the whole prefix is blocked rather than guessed at.
  ["64:ff9b:1::/48", "local-use NAT64"],
  // Beyond SPEC-NOTES: Azure's host endpoint (WireServer, metadata for VM
  // agents) sits on a public-looking address; fec0::/10 is the deprecated
  // site-local range some networks still route internally; Teredo
  // (2001::/32) tunnels to an IPv4 address hidden in its bits.
  ["168.63.129.16/32", "Azure host endpoint"],
  ["fec0::/10", "site-local (deprecated)"],
  ["2001::/32", "Teredo"],
];

/**
 * IPv6 forms that carry an IPv4 address and reach it (or may, through a
 * translator): the embedded address is judged like the IPv4 one, so
 * `::ffff:127.0.0.1` is as blocked as `127.0.0.1`.
 */
const EMBEDDING: readonly { range: Cidr; form: string; ipv4: (parts: readonly number[]) => ipaddr.IPv4 }[] = [
  { range: ipaddr.parseCIDR("::ffff:0:0/96"), form: "IPv4-mapped", ipv4: (p) => ipv4Of(p[6]!, p[7]!) },
  { range: ipaddr.parseCIDR("::ffff:0:0:0/96"), form: "IPv4-translated", ipv4: (p) => ipv4Of(p[6]!, p[7]!) },
  { range: ipaddr.parseCIDR("64:ff9b::/96"), form: "NAT64", ipv4: (p) => ipv4Of(p[6]!, p[7]!) },
  { range: ipaddr.parseCIDR("2002::/16"), form: "6to4", ipv4: (p) => ipv4Of(p[1]!, p[2]!) },
  { range: ipaddr.parseCIDR("::/96"), form: "IPv4-compatible", ipv4: (p) => ipv4Of(p[6]!, p[7]!) },
];

const ALLOW_HINT = "allow it with HOOKLINE_ALLOWED_CIDRS";

/** Decides which addresses deliveries may connect to. */
export class AddressGuard implements DestinationCheck {
  private readonly blocked: readonly NamedRange[] = BLOCKED.map(([text, label]) => named(text, label));
  private readonly allowed: readonly NamedRange[];

  /** `allowedCidrs` open ranges that would otherwise be blocked (see {@link parseAllowedCidrs}). */
  constructor(allowedCidrs: readonly string[]) {
    this.allowed = allowedCidrs.map((text) => named(normaliseCidr(text), "allowed"));
  }

  /**
   * Judges one IP address, as connected to: `undefined` when deliveries may
   * reach it, otherwise why not (for the attempt's error and the operator).
   * Anything that is not an IP address is refused.
   */
  check(ip: string): string | undefined {
    let address: Address;
    try {
      address = ipaddr.parse(ip);
    } catch {
      return `"${ip}" is not an IP address`;
    }
    if (this.isAllowed(address)) return undefined;
    const range = find(this.blocked, address);
    if (range) return `${ip} is in ${range.text} (${range.label}), which is blocked; ${ALLOW_HINT}`;
    const embedded = embeddedIPv4(address);
    if (embedded && !this.isAllowed(embedded.ipv4)) {
      const inner = find(this.blocked, embedded.ipv4);
      if (inner) {
        return `${ip} is the ${embedded.form} form of ${embedded.ipv4.toString()}, which is in ${inner.text} (${inner.label}) and blocked; ${ALLOW_HINT}`;
      }
    }
    return undefined;
  }

  /**
   * Judges an endpoint URL when it is created: why it can never be
   * delivered to, or `undefined`. Only what needs no DNS is judged here: IP
   * literals, and `localhost` and `*.localhost`, which always mean loopback
   * (RFC 6761) and pass only when 127.0.0.1 or ::1 is allowed. Other names
   * are judged by address at every connection.
   */
  neverAllowed(url: URL): string | undefined {
    const host = url.hostname;
    // The WHATWG URL parser writes IPv4 in dotted decimal (http://0x7f.1/ has
    // hostname 127.0.0.1) and IPv6 in brackets.
    if (host.startsWith("[") && host.endsWith("]")) return this.check(host.slice(1, -1));
    if (ipaddr.IPv4.isValidFourPartDecimal(host)) return this.check(host);
    const name = host.toLowerCase().replace(/\.$/, "");
    if (name === "localhost" || name.endsWith(".localhost")) {
      const v4 = this.check("127.0.0.1");
      if (v4 && this.check("::1")) {
        return `${host} always resolves to loopback (127.0.0.0/8 or ::1), which is blocked; ${ALLOW_HINT}`;
      }
    }
    return undefined;
  }

  private isAllowed(address: Address): boolean {
    return find(this.allowed, address) !== undefined;
  }
}

/**
 * Parses HOOKLINE_ALLOWED_CIDRS: comma-separated CIDR ranges such as
 * `10.0.0.0/8, fd00::/8`; a bare address is a range of one. Returns them
 * normalised (`127.0.0.1/8` becomes `127.0.0.0/8`); throws an Error naming
 * the first entry that is not a range.
 */
export function parseAllowedCidrs(text: string): string[] {
  return text
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "")
    .map(normaliseCidr);
}

/** `text` as a normalised CIDR, or an Error naming it. */
function normaliseCidr(text: string): string {
  const bad = () => new Error(`"${text}" is not a CIDR range (examples: 10.0.0.0/8, fd00::/8, 192.168.1.20)`);
  const [addressText = "", prefixText, ...rest] = text.trim().split("/");
  if (rest.length > 0 || (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText))) throw bad();
  // Dotted decimal only: "10.1/8" and "0x0a.0.0.0/8" are not meant seriously.
  const v4 = ipaddr.IPv4.isValidFourPartDecimal(addressText);
  if (!v4 && !ipaddr.IPv6.isValid(addressText)) throw bad();
  const address = ipaddr.parse(addressText);
  if (address.kind() === "ipv6" && (address as ipaddr.IPv6).zoneId !== undefined) throw bad();
  const bits = v4 ? 32 : 128;
  const prefix = prefixText === undefined ? bits : Number(prefixText);
  if (prefix > bits) throw bad();
  const network = v4
    ? ipaddr.IPv4.networkAddressFromCIDR(`${addressText}/${prefix}`)
    : ipaddr.IPv6.networkAddressFromCIDR(`${addressText}/${prefix}`);
  return `${network.toString()}/${prefix}`;
}

function named(text: string, label: string): NamedRange {
  return { cidr: ipaddr.parseCIDR(text), text, label };
}

function find(ranges: readonly NamedRange[], address: Address): NamedRange | undefined {
  return ranges.find((r) => r.cidr[0].kind() === address.kind() && address.match(r.cidr));
}

function embeddedIPv4(address: Address): { ipv4: ipaddr.IPv4; form: string } | undefined {
  if (address.kind() !== "ipv6") return undefined;
  const v6 = address as ipaddr.IPv6;
  const hit = EMBEDDING.find((e) => v6.match(e.range));
  return hit && { ipv4: hit.ipv4(v6.parts), form: hit.form };
}

function ipv4Of(high: number, low: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

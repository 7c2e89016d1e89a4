/**
 * A tripwire under every TCP connection the test process starts. It records
 * each address a socket is about to connect to (an IP address as given, a
 * name as its lookup answers) and stops every one beyond this host, so a
 * test of hostile destinations sends nothing past loopback even when the
 * code under test fails.
 *
 * It wraps `net.Socket.prototype.connect`, which `net.connect`, `tls.connect`
 * and undici's connector all go through; a name's addresses are seen by
 * wrapping the socket's `lookup` option. Connections by path (Unix sockets)
 * and the `connect(port, host)` form pass unrecorded.
 */
import { lookup as dnsLookup } from "node:dns";
import net, { type LookupFunction } from "node:net";
import ipaddr from "ipaddr.js";

/** One address a socket was about to connect to. */
export interface Handed {
  address: string;
  port: number;
}

/** An armed tripwire; see the module comment. */
export interface Tripwire {
  /** Every address a socket was about to connect to, in order, stopped ones included. */
  readonly handed: Handed[];
  /** Those beyond this host, which were stopped before connecting. */
  readonly stopped: Handed[];
  /** Restores `net.Socket.prototype.connect`. */
  disarm(): void;
}

type Connect = (this: net.Socket, ...args: unknown[]) => net.Socket;
type ConnectOptions = { host?: string; port?: number | string; path?: string; lookup?: LookupFunction };

/** Whether connecting to `ip` stays on this host: loopback, or the unspecified address (which Linux connects to loopback). */
export function staysOnHost(ip: string): boolean {
  let address: ipaddr.IPv4 | ipaddr.IPv6 = ipaddr.parse(ip.split("%")[0]!);
  if (address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
    address = (address as ipaddr.IPv6).toIPv4Address();
  }
  const range = address.range();
  return range === "loopback" || range === "unspecified";
}

/** Arms the tripwire for the whole process until `disarm()`. */
export function armTripwire(): Tripwire {
  const prototype = net.Socket.prototype as unknown as { connect: Connect };
  const original = prototype.connect;
  const handed: Handed[] = [];
  const stopped: Handed[] = [];
  const refusal = (addresses: readonly string[]) => new Error(`tripwire: ${addresses.join(", ")} is beyond this host; tests stay on loopback`);

  prototype.connect = function (this: net.Socket, ...args: unknown[]): net.Socket {
    // net.connect passes its normalised arguments as one array: [options, callback].
    const first = Array.isArray(args[0]) ? (args[0][0] as unknown) : args[0];
    if (typeof first !== "object" || first === null) return original.apply(this, args);
    const options = first as ConnectOptions;
    if (options.path !== undefined) return original.apply(this, args);
    const port = Number(options.port);
    const host = options.host ?? "localhost";
    if (net.isIP(host) !== 0) {
      handed.push({ address: host, port });
      if (!staysOnHost(host)) {
        stopped.push({ address: host, port });
        // Emitted on the next tick, once the caller has its error listener on.
        process.nextTick(() => this.destroy(refusal([host])));
        return this;
      }
      return original.apply(this, args);
    }
    const lookup: LookupFunction = options.lookup ?? dnsLookup;
    options.lookup = (hostname, lookupOptions, callback) => {
      lookup(hostname, lookupOptions, (err, address, family) => {
        if (err) {
          callback(err, address, family);
          return;
        }
        const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address];
        for (const a of addresses) handed.push({ address: a, port });
        const leaving = addresses.filter((a) => !staysOnHost(a));
        if (leaving.length > 0) {
          for (const a of leaving) stopped.push({ address: a, port });
          callback(refusal(leaving), "", 0);
          return;
        }
        callback(null, address, family);
      });
    };
    return original.apply(this, args);
  };

  return {
    handed,
    stopped,
    disarm() {
      prototype.connect = original;
    },
  };
}

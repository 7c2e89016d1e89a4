/**
 * How request messages are read from JSON, on every protocol.
 *
 * Unknown fields are errors: a misspelt field or enum name is refused, not
 * silently ignored.
 *
 * Error messages must be well-formed UTF-16. gRPC and gRPC-Web send them
 * percent-encoded in the grpc-message trailer, and connect-es's
 * encodeURIComponent throws on a lone surrogate: the call is then never
 * answered (fuzzing found this; the client waits until its deadline). JSON
 * decode errors can hold one: V8's JSON.parse errors quote the text around
 * the error, cut between the two halves of a character beyond the BMP, and
 * the decoder quotes values such as an escaped "\uD800". So a request whose
 * text holds surrogates or surrogate escapes is parsed here first (a second
 * parse, for those requests only): a syntax error, or a string that is not
 * well-formed, is refused with a well-formed InvalidArgument.
 */
import { Code, ConnectError } from "@connectrpc/connect";

/** Characters beyond the BMP, or \u escapes of surrogates. */
const SURROGATES = /[\uD800-\uDFFF]|\\u[dD][89a-fA-F][0-9a-fA-F]{2}/;

/** A surrogate without its other half. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The path of the first string or member name in `value` that is not
 * well-formed ("event_types[2]", "schema.properties"), or undefined. The
 * first step is the request field: JSON names ("eventTypes") become proto
 * names, as in every other error.
 */
function illFormedAt(value: unknown, path: string): string | undefined {
  if (typeof value === "string") return LONE_SURROGATE.test(value) ? path : undefined;
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const found = illFormedAt(item, `${path}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (typeof value === "object" && value !== null) {
    for (const [name, member] of Object.entries(value)) {
      const step = path === "" ? name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : `${path}.${name}`;
      const found = LONE_SURROGATE.test(name) ? step : illFormedAt(member, step);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

const utf8 = new TextDecoder();

/** Decodes a request's JSON text, refusing what would make an ill-formed error message (see the module comment). */
export const requestJsonDecoder = {
  decode(input?: Uint8Array): string {
    const text = utf8.decode(input);
    if (!SURROGATES.test(text)) return text;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new ConnectError(`the request is not valid JSON: ${(err as Error).message.replace(new RegExp(LONE_SURROGATE, "g"), "\uFFFD")}`, Code.InvalidArgument);
    }
    const at = illFormedAt(value, "");
    if (at !== undefined) {
      const field = at.replace(new RegExp(LONE_SURROGATE, "g"), "\uFFFD");
      throw new ConnectError(`${field}: is not valid Unicode (an unpaired surrogate escape)`, Code.InvalidArgument);
    }
    return text;
  },
};

/** The JSON options of every service (see the module comment). */
export const REQUEST_JSON_OPTIONS = { ignoreUnknownFields: false, textDecoder: requestJsonDecoder };

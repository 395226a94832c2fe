/**
 * Outbound fetches to URLs a client chose (Client ID Metadata Documents) without SSRF: only https (http only when
 * allowed), host allow/deny lists, DNS answers checked against private/loopback/link-local ranges and then pinned
 * for the connection (no DNS rebinding between check and connect), no redirects, size and time limits.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';

/** Why an outbound fetch was refused or failed. */
export class OutboundFetchError extends Error {
  constructor(
    readonly reason:
      | 'scheme'
      | 'host_denied'
      | 'address_forbidden'
      | 'dns'
      | 'redirect'
      | 'status'
      | 'too_large'
      | 'timeout'
      | 'network'
      | 'content_type',
    message: string,
  ) {
    super(message);
    this.name = 'OutboundFetchError';
  }
}

export interface OutboundPolicy {
  allowHttp: boolean;
  allowPrivateAddresses: boolean;
  allowedHosts: string[];
  deniedHosts: string[];
  maxBytes: number;
  timeoutMs: number;
  /** Extra trusted CA certificates (PEM), added to Node's defaults. */
  ca?: string;
}

/*
 * Addresses a public document can never live on: every block the IANA IPv4 and IPv6 Special-Purpose Address
 * Registries mark as not globally reachable (https://www.iana.org/assignments/iana-ipv4-special-registry and
 * https://www.iana.org/assignments/iana-ipv6-special-registry, RFC 6890, RFC 8190), plus multicast, the deprecated
 * site-local fec0::/10 (RFC 3879) and 240/4. Inside 192.0.0.0/24 and 2001::/23 the registries list a few globally
 * reachable exceptions (PCP, TURN and DNS-SD anycast, AMT, AS112, ORCHIDv2, DET); they stay blocked: anycast service
 * addresses reach the nearest, often on-premises, server, the others are identifiers, and none serves documents.
 * Blocks that embed an IPv4 address (mapped, translated, compatible, NAT64, 6to4) are judged by that IPv4 address.
 * Any other IPv6 address outside 2000::/3, the only global unicast space in the IANA IPv6 Address Space registry
 * (https://www.iana.org/assignments/ipv6-address-space), is refused too: the rest is reserved and not routed.
 */
const FORBIDDEN_V4 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
  ['255.255.255.255', 32],
] as const)
  FORBIDDEN_V4.addSubnet(net, prefix, 'ipv4');
const FORBIDDEN_V6 = new BlockList();
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['3fff::', 20],
  ['5f00::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const)
  FORBIDDEN_V6.addSubnet(net, prefix, 'ipv6');
const GLOBAL_UNICAST_V6 = new BlockList();
GLOBAL_UNICAST_V6.addSubnet('2000::', 3, 'ipv6');

/** The eight 16-bit groups of an IPv6 address (a zone id is dropped), or undefined when it is not one. */
function ipv6Groups(address: string): number[] | undefined {
  const text = address.replace(/%.*$/, '');
  if (isIP(text) !== 6) return undefined;
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const parse = (part: string | undefined) => {
    if (!part) return [];
    return part.split(':').flatMap((g) => {
      if (!g.includes('.')) return [parseInt(g, 16)];
      const [a, b, c, d] = g.split('.').map(Number) as [number, number, number, number];
      return [(a << 8) | b, (c << 8) | d];
    });
  };
  const left = parse(head);
  const right = parse(tail);
  return tail === undefined ? left : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

const dotted = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/** The IPv4 address inside an IPv6 address of a block that carries one, else undefined. */
function embeddedIPv4(g: number[]): string | undefined {
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  if (zero(0, 5) && g[5] === 0xffff) return dotted(g[6]!, g[7]!); // ::ffff:0:0/96 IPv4-mapped (RFC 4291)
  if (zero(0, 4) && g[4] === 0xffff && g[5] === 0) return dotted(g[6]!, g[7]!); // ::ffff:0:0:0/96 translated (RFC 2765)
  if (zero(0, 6)) return dotted(g[6]!, g[7]!); // ::/96 IPv4-compatible (deprecated, RFC 4291)
  if (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) return dotted(g[6]!, g[7]!); // 64:ff9b::/96 NAT64 (RFC 6052)
  if (g[0] === 0x2002) return dotted(g[1]!, g[2]!); // 2002::/16 6to4 (RFC 3056)
  return undefined;
}

/**
 * An IP address in comparable form: `address` canonical (IPv4 dotted, IPv6 as eight lowercase hex groups, an
 * IPv4-mapped IPv6 address as its IPv4), and `embedded`, the IPv4 address another IPv6 form carries.
 */
export function ipIdentity(address: string): { address: string; embedded?: string } | undefined {
  if (isIP(address) === 4) return { address };
  const g = ipv6Groups(address);
  if (!g) return undefined;
  const embedded = embeddedIPv4(g);
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return { address: embedded! };
  return { address: g.map((x) => x.toString(16)).join(':'), embedded };
}

/** True for addresses that are not globally reachable (see the registries above); also for non-addresses. */
export function isForbiddenAddress(address: string): boolean {
  const id = ipIdentity(address);
  if (!id) return true;
  if (isIP(id.address) === 4) return FORBIDDEN_V4.check(id.address, 'ipv4');
  if (FORBIDDEN_V6.check(id.address, 'ipv6')) return true;
  if (id.embedded !== undefined) return FORBIDDEN_V4.check(id.embedded, 'ipv4');
  return !GLOBAL_UNICAST_V6.check(id.address, 'ipv6');
}

type HostKey = { ip: string; embedded?: string } | { name: string };

/**
 * A host name or IP literal (bracketed or not) in comparable form: IP literals by address (any IPv4 spelling the
 * URL parser accepts, IPv6 in any notation), names lowercased, as IDNA A-labels, without one trailing dot.
 */
function hostKey(raw: string): HostKey {
  let h = raw.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (!isIP(h)) {
    try {
      h = new URL(`http://${h}/`).hostname; // WHATWG host parsing: 0x7f.1 -> 127.0.0.1, bücher -> xn--bcher-kva
    } catch {
      // Not a valid host: compare as written.
    }
  }
  const id = ipIdentity(h);
  if (id) return { ip: id.address, embedded: id.embedded };
  return { name: h.endsWith('.') ? h.slice(0, -1) : h };
}

/**
 * `*.example.com` matches subdomains, `example.com` only itself; IP patterns match the same address in any spelling.
 * With `viaEmbedded`, an IP pattern also matches an IPv6 address that carries it (NAT64, 6to4, ...): for deny lists.
 */
export function hostMatches(host: string, patterns: readonly string[], viaEmbedded = false): boolean {
  const h = hostKey(host);
  return patterns.some((p) => {
    const wildcard = p.trim().startsWith('*.');
    const pat = hostKey(wildcard ? p.trim().slice(2) : p);
    if ('ip' in pat) return !wildcard && 'ip' in h && (h.ip === pat.ip || (viaEmbedded && h.embedded === pat.ip));
    if (!('name' in h)) return false;
    return wildcard ? h.name.endsWith(`.${pat.name}`) : h.name === pat.name;
  });
}

export interface OutboundResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** GETs `url` under `policy`. Throws OutboundFetchError on every refusal. */
export async function safeGet(
  url: URL,
  policy: OutboundPolicy,
  accept = 'application/json',
): Promise<OutboundResponse> {
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttp)) {
    throw new OutboundFetchError('scheme', 'only https URLs may be fetched');
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (hostMatches(host, policy.deniedHosts, true))
    throw new OutboundFetchError('host_denied', `host ${host} is denied`);
  if (policy.allowedHosts.length > 0 && !hostMatches(host, policy.allowedHosts)) {
    throw new OutboundFetchError('host_denied', `host ${host} is not on the allow list`);
  }
  let address: string;
  let family: number;
  if (isIP(host)) {
    address = host;
    family = isIP(host);
  } else {
    try {
      const answers = await lookup(host, { all: true, verbatim: true });
      if (answers.length === 0) throw new Error('no address');
      // A denied IP address stays denied behind any name that resolves to it.
      if (answers.some((a) => hostMatches(a.address, policy.deniedHosts, true))) {
        throw new OutboundFetchError('host_denied', `host ${host} resolves to a denied address`);
      }
      // Every answer must be allowed, or an attacker could mix a public and a private address.
      if (!policy.allowPrivateAddresses && answers.some((a) => isForbiddenAddress(a.address))) {
        throw new OutboundFetchError('address_forbidden', `host ${host} resolves to a forbidden address`);
      }
      address = answers[0]!.address;
      family = answers[0]!.family;
    } catch (err) {
      if (err instanceof OutboundFetchError) throw err;
      throw new OutboundFetchError('dns', `host ${host} cannot be resolved`);
    }
  }
  if (!policy.allowPrivateAddresses && isForbiddenAddress(address)) {
    throw new OutboundFetchError('address_forbidden', `address ${address} is not allowed`);
  }

  const client = url.protocol === 'https:' ? https : http;
  return new Promise<OutboundResponse>((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: 'GET',
        headers: { accept, 'user-agent': 'gatehouse' },
        // Pin the vetted address: the connection goes where the check looked (no DNS rebinding).
        lookup: (_hostname, options, cb) => {
          if ((options as { all?: boolean }).all)
            (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family }]);
          else cb(null, address, family);
        },
        timeout: policy.timeoutMs,
        ...(policy.ca ? { ca: [...tls.rootCertificates, policy.ca] } : {}),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400) {
          res.resume();
          reject(new OutboundFetchError('redirect', 'redirects are not followed'));
          return;
        }
        const declared = Number(res.headers['content-length'] ?? '0');
        if (declared > policy.maxBytes) {
          res.destroy();
          reject(new OutboundFetchError('too_large', `document larger than ${policy.maxBytes} bytes`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > policy.maxBytes) {
            res.destroy();
            reject(new OutboundFetchError('too_large', `document larger than ${policy.maxBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolve({ status, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', () => reject(new OutboundFetchError('network', 'connection failed')));
      },
    );
    // An overall deadline too: `timeout` above only covers idle sockets, a slow drip could last forever.
    const deadline = setTimeout(() => {
      req.destroy();
      reject(new OutboundFetchError('timeout', `no complete answer within ${policy.timeoutMs} ms`));
    }, policy.timeoutMs);
    req.on('timeout', () => {
      req.destroy();
      reject(new OutboundFetchError('timeout', `no answer within ${policy.timeoutMs} ms`));
    });
    req.on('error', () => reject(new OutboundFetchError('network', 'connection failed')));
    req.on('close', () => clearTimeout(deadline));
    req.end();
  });
}

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
    readonly reason: 'scheme' | 'host_denied' | 'address_forbidden' | 'dns' | 'redirect' | 'status' | 'too_large' | 'timeout' | 'network' | 'content_type',
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

// Special-purpose ranges (RFC 6890 and friends) that a public document can never live on.
const FORBIDDEN = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4], ['255.255.255.255', 32],
] as const) FORBIDDEN.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['::ffff:0:0', 96], ['64:ff9b::', 96], ['100::', 64], ['2001::', 23], ['2001:db8::', 32],
  ['fc00::', 7], ['fe80::', 10], ['ff00::', 8],
] as const) FORBIDDEN.addSubnet(net, prefix, 'ipv6');

/** True for addresses that are not globally routable (loopback, private, link-local, CGNAT, documentation, ...). */
export function isForbiddenAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return FORBIDDEN.check(address, 'ipv4');
  if (family === 6) {
    // IPv4-mapped IPv6: judge the embedded IPv4 address.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return FORBIDDEN.check(mapped[1]!, 'ipv4');
    return FORBIDDEN.check(address, 'ipv6');
  }
  return true;
}

/** `*.example.com` matches subdomains, `example.com` only itself. */
export function hostMatches(host: string, patterns: readonly string[]): boolean {
  const h = host.toLowerCase();
  return patterns.some((p) => {
    const pat = p.toLowerCase();
    return pat.startsWith('*.') ? h.endsWith(pat.slice(1)) : h === pat;
  });
}

export interface OutboundResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** GETs `url` under `policy`. Throws OutboundFetchError on every refusal. */
export async function safeGet(url: URL, policy: OutboundPolicy, accept = 'application/json'): Promise<OutboundResponse> {
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && policy.allowHttp)) {
    throw new OutboundFetchError('scheme', 'only https URLs may be fetched');
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (hostMatches(host, policy.deniedHosts)) throw new OutboundFetchError('host_denied', `host ${host} is denied`);
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
          if ((options as { all?: boolean }).all) (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family }]);
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

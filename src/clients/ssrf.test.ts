import { lookup } from 'node:dns/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { startCimdServer, type CimdServer } from '../../test/helpers/cimd-server.js';
import {
  hostMatches,
  ipIdentity,
  isForbiddenAddress,
  OutboundFetchError,
  safeGet,
  type OutboundPolicy,
} from './ssrf.js';

describe('isForbiddenAddress: the IANA special-purpose registries', () => {
  // [block, an address inside it]; every one must be refused.
  it.each([
    ['0.0.0.0/8', '0.1.2.3'],
    ['0.0.0.0/8 (this host)', '0.0.0.0'],
    ['10.0.0.0/8', '10.255.255.255'],
    ['100.64.0.0/10 (CGNAT)', '100.127.0.1'],
    ['127.0.0.0/8', '127.0.0.1'],
    ['127.0.0.0/8 (end)', '127.255.255.254'],
    ['169.254.0.0/16 (link-local, cloud metadata)', '169.254.169.254'],
    ['172.16.0.0/12', '172.31.255.255'],
    ['192.0.0.0/24 (IETF protocol assignments)', '192.0.0.8'],
    ['192.0.0.0/24 (PCP anycast stays blocked)', '192.0.0.9'],
    ['192.0.2.0/24 (TEST-NET-1)', '192.0.2.1'],
    ['192.88.99.0/24 (6to4 relay anycast)', '192.88.99.1'],
    ['192.168.0.0/16', '192.168.1.1'],
    ['198.18.0.0/15 (benchmarking)', '198.19.255.255'],
    ['198.51.100.0/24 (TEST-NET-2)', '198.51.100.7'],
    ['203.0.113.0/24 (TEST-NET-3)', '203.0.113.9'],
    ['224.0.0.0/4 (multicast)', '239.255.255.250'],
    ['240.0.0.0/4 (reserved)', '250.1.2.3'],
    ['255.255.255.255/32 (broadcast)', '255.255.255.255'],
    ['::/128 (unspecified)', '::'],
    ['::1/128 (loopback)', '::1'],
    ['::1/128 (long form)', '0:0:0:0:0:0:0:1'],
    ['::ffff:0:0/96 (mapped 127.0.0.1, hex)', '::ffff:7f00:1'],
    ['::ffff:0:0/96 (mapped 127.0.0.1, dotted)', '::ffff:127.0.0.1'],
    ['::ffff:0:0/96 (mapped 10.0.0.1)', '::ffff:a00:1'],
    ['::ffff:0:0/96 (mapped 169.254.169.254)', '::ffff:169.254.169.254'],
    ['::ffff:0:0:0/96 (translated 127.0.0.1)', '::ffff:0:7f00:1'],
    ['::ffff:0:0:0/96 (translated 192.168.0.1)', '::ffff:0:192.168.0.1'],
    ['::/96 (compatible 127.0.0.1)', '::7f00:1'],
    ['::/96 (compatible 10.1.2.3)', '::10.1.2.3'],
    ['64:ff9b::/96 (NAT64 of 127.0.0.1)', '64:ff9b::7f00:1'],
    ['64:ff9b::/96 (NAT64 of 169.254.169.254)', '64:ff9b::169.254.169.254'],
    ['64:ff9b:1::/48 (local-use NAT64)', '64:ff9b:1::808:808'],
    ['100::/64 (discard-only)', '100::1'],
    ['2001::/23 (Teredo 2001::/32)', '2001:0:4136:e378:8000:63bf:3fff:fdd2'],
    ['2001::/23 (benchmarking 2001:2::/48)', '2001:2::1'],
    ['2001::/23 (ORCHID 2001:10::/28)', '2001:10::1'],
    ['2001::/23 (ORCHIDv2 2001:20::/28, exception kept blocked)', '2001:20::1'],
    ['2001::/23 (end)', '2001:1ff:ffff::1'],
    ['2001:db8::/32 (documentation)', '2001:db8::1'],
    ['2002::/16 (6to4 of 127.0.0.1)', '2002:7f00:1::1'],
    ['2002::/16 (6to4 of 10.0.0.1)', '2002:a00:1::'],
    ['2002::/16 (6to4 of 192.168.1.1)', '2002:c0a8:101:1::1'],
    ['3fff::/20 (documentation)', '3fff:fff::1'],
    ['5f00::/16 (SRv6 SIDs)', '5f00:1::1'],
    ['fc00::/7 (unique local)', 'fd12:3456::1'],
    ['fc00::/7 (fc half)', 'fc00::1'],
    ['fe80::/10 (link-local)', 'fe80::1'],
    ['fe80::/10 (with a zone id)', 'fe80::1%eth0'],
    ['fe80::/10 (end)', 'febf::1'],
    ['fec0::/10 (site-local, deprecated)', 'fec0::1'],
    ['ff00::/8 (multicast)', 'ff02::1'],
    ['outside 2000::/3 (reserved, unrouted)', '5f01::1'],
    ['outside 2000::/3 (reserved, unrouted)', '4000::1'],
    ['outside 2000::/3 (reserved, unrouted)', 'fbff::1'],
    ['outside 2000::/3 (reserved, unrouted)', 'fe00::1'],
    ['outside 2000::/3 (reserved, unrouted)', 'ff::1'],
    ['outside 2000::/3 (reserved, unrouted)', '1::1'],
  ])('%s: %s is forbidden', (_block, address) => {
    expect(isForbiddenAddress(address)).toBe(true);
  });

  // Globally reachable neighbours of those blocks, and the embedding forms around a public IPv4 address.
  it.each([
    '1.1.1.1',
    '8.8.8.8',
    '9.255.255.255',
    '11.0.0.0',
    '100.63.255.255',
    '100.128.0.0',
    '126.255.255.255',
    '128.0.0.0',
    '169.253.255.255',
    '169.255.0.0',
    '172.15.255.255',
    '172.32.0.0',
    '192.0.1.1',
    '192.88.98.255',
    '192.167.255.255',
    '192.169.0.0',
    '198.17.255.255',
    '198.20.0.0',
    '223.255.255.255',
    '93.184.216.34',
    '2606:4700:4700::1111',
    '2001:200::1',
    '2001:4860:4860::8888',
    '2003::1',
    '2001:db9::1',
    '3fff:1000::1',
    '2400:cb00::1',
    '::ffff:8.8.8.8',
    '::ffff:808:808',
    '64:ff9b::8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
    '::ffff:0:8.8.8.8',
    '::8.8.8.8',
  ])('%s is allowed', (address) => {
    expect(isForbiddenAddress(address)).toBe(false);
  });

  it.each(['', 'localhost', 'example.com', '1.2.3', '999.1.1.1', '1::2::3', '[::1]'])(
    '%j (not an address) is forbidden',
    (address) => {
      expect(isForbiddenAddress(address)).toBe(true);
    },
  );
});

describe('ipIdentity', () => {
  it.each([
    ['::ffff:127.0.0.1', '127.0.0.1', undefined],
    ['::FFFF:7F00:1', '127.0.0.1', undefined],
    ['0:0:0:0:0:ffff:7f00:1', '127.0.0.1', undefined],
    ['::1', '0:0:0:0:0:0:0:1', '0.0.0.1'],
    ['2001:DB8::0:1', '2001:db8:0:0:0:0:0:1', undefined],
    ['64:ff9b::7f00:1', '64:ff9b:0:0:0:0:7f00:1', '127.0.0.1'],
    ['2002:7f00:1::', '2002:7f00:1:0:0:0:0:0', '127.0.0.1'],
  ])('%s -> %s (embedded %s)', (input, address, embedded) => {
    expect(ipIdentity(input)).toEqual(embedded ? { address, embedded } : { address });
  });
});

describe('hostMatches: allow/deny list normalisation', () => {
  it.each([
    ['127.0.0.1', ['127.0.0.1']],
    ['::ffff:7f00:1', ['127.0.0.1']],
    ['::ffff:127.0.0.1', ['127.0.0.1']],
    ['127.0.0.1', ['::ffff:127.0.0.1']],
    ['127.0.0.1', ['[::ffff:7f00:1]']],
    ['127.0.0.1', ['0x7f.1']],
    ['127.0.0.1', ['2130706433']],
    ['::1', ['[::1]']],
    ['::1', ['0:0:0:0:0:0:0:1']],
    ['2001:db8::1', ['2001:DB8:0::1']],
    ['evil.example.', ['evil.example']],
    ['evil.example', ['evil.example.']],
    ['EVIL.Example', ['evil.example']],
    ['a.evil.example.', ['*.evil.example']],
    ['a.evil.example', ['*.Evil.Example.']],
    ['xn--bcher-kva.example', ['bücher.example']],
    ['xn--bcher-kva.example', ['BÜCHER.example.']],
  ])('%s matches %j', (host, patterns) => {
    expect(hostMatches(host, patterns)).toBe(true);
  });

  it.each([
    ['127.0.0.2', ['127.0.0.1']],
    ['::1', ['127.0.0.1']],
    ['evil.example', ['*.evil.example']],
    ['notevil.example', ['*.evil.example']],
    ['evil.example.com', ['evil.example']],
    ['evil.example..', ['evil.example']],
    ['127.0.0.1', ['*.0.0.1']],
    ['64:ff9b::7f00:1', ['127.0.0.1']],
  ])('%s does not match %j', (host, patterns) => {
    expect(hostMatches(host, patterns)).toBe(false);
  });

  it('for deny lists, an IPv4 pattern also matches the IPv6 forms that carry it (NAT64, 6to4, compatible)', () => {
    for (const host of ['64:ff9b::7f00:1', '2002:7f00:1::1', '::7f00:1', '::ffff:0:7f00:1']) {
      expect(hostMatches(host, ['127.0.0.1'], true)).toBe(true);
      expect(hostMatches(host, ['127.0.0.2'], true)).toBe(false);
    }
  });
});

describe('safeGet: the deny list against URL hosts and resolved addresses', () => {
  let cimd: CimdServer;
  let port: string;
  let policy: OutboundPolicy;
  beforeAll(async () => {
    cimd = await startCimdServer();
    cimd.docs.set('/doc.json', { body: '{"ok":true}' });
    port = new URL(cimd.origin).port;
    // Private addresses allowed, so that only the deny list can refuse these loopback fetches.
    policy = {
      allowHttp: false,
      allowPrivateAddresses: true,
      allowedHosts: [],
      deniedHosts: [],
      maxBytes: 1024,
      timeoutMs: 5000,
      ca: readFileSync(cimd.caFile, 'utf8'),
    };
  });
  afterAll(() => cimd.close());

  const reason = async (url: string, deniedHosts: string[]) => {
    try {
      await safeGet(new URL(url), { ...policy, deniedHosts });
      return 'fetched';
    } catch (err) {
      return err instanceof OutboundFetchError ? err.reason : String(err);
    }
  };

  it('fetches when nothing is denied (the refusals below are the deny list, not the setup)', async () => {
    expect(await reason(`https://localhost:${port}/doc.json`, [])).toBe('fetched');
  });

  it('a deny of 127.0.0.1 blocks a name that resolves there', async () => {
    const answers = await lookup('localhost', { all: true, verbatim: true });
    expect(answers.map((a) => a.address)).toContain('127.0.0.1');
    expect(await reason(`https://localhost:${port}/doc.json`, ['127.0.0.1'])).toBe('host_denied');
    expect(await reason(`https://localhost:${port}/doc.json`, ['[::ffff:7f00:1]'])).toBe('host_denied');
  });

  it.each([
    ['https://[::ffff:7f00:1]/doc.json', ['127.0.0.1']],
    ['https://[::ffff:127.0.0.1]/doc.json', ['127.0.0.1']],
    ['https://0x7f.1/doc.json', ['127.0.0.1']],
    ['https://[64:ff9b::7f00:1]/doc.json', ['127.0.0.1']],
    ['https://evil.example./doc.json', ['evil.example']],
    ['https://EVIL.example/doc.json', ['evil.example.']],
    ['https://a.evil.example./doc.json', ['*.evil.example']],
  ])('%s is denied by %j', async (url, deniedHosts) => {
    expect(await reason(url, deniedHosts)).toBe('host_denied');
  });

  it('the allow list admits a trailing-dot spelling of an allowed name (it gets past the list), and nothing else', async () => {
    const allow = async (url: string, allowedHosts: string[]) => {
      try {
        await safeGet(new URL(url), { ...policy, allowedHosts });
        return 'fetched';
      } catch (err) {
        return (err as OutboundFetchError).reason;
      }
    };
    expect(await allow(`https://localhost:${port}/doc.json`, ['localhost.'])).toBe('fetched');
    // "localhost." may not resolve on this machine; what matters is that the allow list did not refuse it.
    expect(await allow(`https://localhost.:${port}/doc.json`, ['localhost'])).not.toBe('host_denied');
    expect(await allow(`https://127.0.0.1:${port}/doc.json`, ['localhost'])).toBe('host_denied');
  });

  it.each([
    'https://[::ffff:7f00:1]/x',
    'https://[64:ff9b::a9fe:a9fe]/x',
    'https://[2002:a9fe:a9fe::]/x',
    'https://[fec0::1]/x',
    'https://[::7f00:1]/x',
  ])('without allowPrivateAddresses, %s is address_forbidden', async (url) => {
    await expect(safeGet(new URL(url), { ...policy, allowPrivateAddresses: false })).rejects.toMatchObject({
      reason: 'address_forbidden',
    });
  });
});

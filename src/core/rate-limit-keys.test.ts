import { describe, expect, it } from 'vitest';
import { addressBucket } from './rate-limit-keys.js';

describe('addressBucket', () => {
  it('keeps IPv4 (also IPv4-mapped) and groups IPv6 by /64', () => {
    expect(addressBucket('203.0.113.9')).toBe('203.0.113.9');
    expect(addressBucket('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(addressBucket('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressBucket('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(addressBucket('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressBucket('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressBucket('64:ff9b::198.51.100.1')).toBe('64:ff9b:0:0::/64');
    expect(addressBucket('::1')).toBe('0:0:0:0::/64');
    expect(addressBucket('not-an-address')).toBe('not-an-address');
  });

  it('buckets an IPv4-mapped IPv6 address with its IPv4 address, in every spelling', () => {
    for (const mapped of [
      '::ffff:1.2.3.4',
      '::FFFF:1.2.3.4',
      '::ffff:102:304',
      '0:0:0:0:0:ffff:0102:0304',
      '::ffff:1.2.3.4%eth0',
    ]) {
      expect(addressBucket(mapped), mapped).toBe('1.2.3.4');
    }
    // Not mapped: a NAT64 address that merely ends in the same bits stays in its own /64.
    expect(addressBucket('64:ff9b::1.2.3.4')).toBe('64:ff9b:0:0::/64');
  });

  it('ignores zone ids and puts every spelling of one /64 in one bucket', () => {
    expect(addressBucket('fe80::1%eth0')).toBe(addressBucket('fe80::1'));
    expect(addressBucket('fe80::1%25')).toBe('fe80:0:0:0::/64');
    const spellings = [
      '2001:db8:0:0:1::1',
      '2001:db8::1:0:0:1',
      '2001:0DB8:0000:0000:0001:0000:0000:0001',
      '2001:db8:0:0:ffff::',
    ];
    for (const a of spellings) expect(addressBucket(a), a).toBe('2001:db8:0:0::/64');
    expect(addressBucket('2001:db8:0:1::1')).toBe('2001:db8:0:1::/64');
  });
});

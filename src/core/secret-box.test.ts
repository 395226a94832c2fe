import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SecretBox } from './crypto.js';

describe('SecretBox (AES-256-GCM at rest)', () => {
  const box = new SecretBox(randomBytes(32).toString('base64'));

  it('round-trips and never stores the plaintext', () => {
    const sealed = box.seal('upstream-refresh-token-123', 'client:a');
    expect(sealed).not.toContain('upstream');
    expect(sealed.startsWith('v1.')).toBe(true);
    expect(box.open(sealed, 'client:a')).toBe('upstream-refresh-token-123');
  });

  it('uses a fresh IV per value', () => {
    expect(box.seal('same')).not.toBe(box.seal('same'));
  });

  it('refuses a wrong key, a wrong aad, and tampering', () => {
    const sealed = box.seal('secret', 'client:a');
    expect(() => new SecretBox(randomBytes(32).toString('base64')).open(sealed, 'client:a')).toThrow();
    expect(() => box.open(sealed, 'client:b')).toThrow();
    const parts = sealed.split('.');
    parts[3] = Buffer.from('tampered').toString('base64url');
    expect(() => box.open(parts.join('.'), 'client:a')).toThrow();
  });

  it('requires a 32-byte key', () => {
    expect(() => new SecretBox(randomBytes(16).toString('base64'))).toThrow(TypeError);
  });
});

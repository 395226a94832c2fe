/**
 * Self-authenticating access-token ids. An access token's `jti` is `<r>.<tag>`: `r` is 16 random bytes and `tag` the
 * first 16 bytes of HMAC-SHA256(K, <protected header b64> "." <payload JSON with jti = r>), both base64url. K is per
 * issuer (each tenant has its own), derived with HKDF from the issuer's stored cookie key, which never leaves the
 * server: nothing for the operator to configure.
 *
 * What it proves: that this issuer minted exactly this header and these claims (every byte of the payload but the tag
 * itself is under the MAC, so a tag copied into other claims does not verify). What it does NOT prove: anything about
 * the signature, which is computed after the payload and so cannot be covered by it. A copy of a genuine token with a
 * broken signature (a log line that dropped the signature, say) still carries a valid tag.
 *
 * Hence its one use, revocation (RFC 7009): what revoke needs is "did this issuer give this jti to this client, and
 * until when"; the tag answers that in about a microsecond, instead of an ECDSA verification on the event loop per
 * request, and a forged token (any claims an attacker makes up) has no valid tag, so it cannot put anything on the
 * revocation list. The caller still authenticates as the token's client_id, so only the client the token was issued
 * to can revoke it. Introspection and userinfo answer with the claims to a resource server and so must also know
 * that the token as presented is the signed one: they keep verifying the signature (core/access-token.ts).
 *
 * Tokens minted before this scheme (a plain 22-character jti) and any tag that does not verify fall back to the
 * signature check, so nothing that verified before is refused now.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

const TAG_BYTES = 16;
const JTI = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})$/;

export class AccessTokenMac {
  private readonly key: Buffer;

  /** `secret`: a stored per-issuer secret (the cookie key); `issuer`: this issuer, bound into the derivation too. */
  constructor(secret: string, issuer: string) {
    this.key = Buffer.from(hkdfSync('sha256', secret, 'gatehouse', `access-token jti mac v1\0${issuer}`, 32));
  }

  /** The tag of a token whose header is `headerB64` and whose payload, with `jti` set to `r`, serialises to `json`. */
  tag(headerB64: string, json: string): string {
    return createHmac('sha256', this.key)
      .update(`${headerB64}.${json}`)
      .digest()
      .subarray(0, TAG_BYTES)
      .toString('base64url');
  }

  /**
   * True when `jti` is `<r>.<tag>` and the tag is this issuer's over `headerB64` and `json` (the payload exactly as
   * it is in the token, with the tagged jti in it). The jti member must occur exactly once in `json`: it is put back
   * to `r` in place, so the MAC covers the very bytes presented.
   */
  verify(headerB64: string, json: string, jti: string): boolean {
    const m = JTI.exec(jti);
    if (!m) return false;
    const member = `"jti":"${jti}"`;
    const at = json.indexOf(member);
    if (at < 0 || json.indexOf(member, at + 1) >= 0) return false;
    const original = `${json.slice(0, at)}"jti":"${m[1]!}"${json.slice(at + member.length)}`;
    // Compared as text, not decoded: base64url's last character has spare bits, and a tag that differs only there
    // must not verify (it would be another jti for the same token).
    const expected = Buffer.from(this.tag(headerB64, original));
    const presented = Buffer.from(m[2]!);
    return presented.length === expected.length && timingSafeEqual(presented, expected);
  }
}

/** True when `jti` has the tagged form (whether or not its tag verifies). */
export function isTaggedJti(jti: string): boolean {
  return JTI.test(jti);
}

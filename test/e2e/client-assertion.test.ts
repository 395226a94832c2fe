/**
 * private_key_jwt (RFC 7523 §2.2) over HTTP, for a Client ID Metadata Document client with inline keys: the lifetime
 * cap is measured from now (a future iat cannot stretch it) and the audience is the issuer identifier only
 * (draft-ietf-oauth-rfc7523bis), so the token endpoint URL is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { randomBytes } from 'node:crypto';
import { ManualClock } from '../../src/core/clock.js';
import { FormBrowser } from '../helpers/browser.js';
import { startCimdServer, type CimdServer } from '../helpers/cimd-server.js';
import { challenge, postForm, verifier } from '../helpers/oauth.js';
import { ALICE, startServer, type TestServer } from '../helpers/server.js';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const REDIRECT = 'http://127.0.0.1:9/callback';
const clock = new ManualClock(Date.now());
let server: TestServer;
let cimd: CimdServer;
let clientId: string;
let privateKey: CryptoKey;

beforeAll(async () => {
  cimd = await startCimdServer();
  const pair = await generateKeyPair('ES256', { extractable: true });
  privateKey = pair.privateKey;
  clientId = `${cimd.origin}/agent.json`;
  cimd.docs.set('/agent.json', {
    body: JSON.stringify({
      client_id: clientId,
      client_name: 'Signing agent',
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] },
    }),
  });
  server = await startServer(
    { clientIdMetadataDocuments: { allowPrivateAddresses: true, trustedCaFile: cimd.caFile } },
    { clock },
  );
});
afterAll(async () => {
  await server.close();
  cimd.close();
});

const now = () => Math.floor(clock.now() / 1000);

/** An assertion signed by the client's key; `claims` override the defaults (aud = issuer, 5 minutes). */
async function assertion(claims: JWTPayload = {}): Promise<string> {
  return new SignJWT({
    iss: clientId,
    sub: clientId,
    aud: server.issuer,
    iat: now(),
    exp: now() + 300,
    jti: randomBytes(12).toString('base64url'),
    ...claims,
  })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .sign(privateKey);
}

/** Revocation (RFC 7009) needs client authentication and answers 200 for any token once the client is known. */
const revokeWith = (clientAssertion: string) =>
  postForm(`${server.issuer}/revoke`, {
    token: 'not-a-real-token',
    client_id: clientId,
    client_assertion_type: JWT_BEARER,
    client_assertion: clientAssertion,
  });

describe('private_key_jwt client assertions over HTTP', () => {
  it('a good assertion (aud = issuer, iat now, 5 minutes) authenticates, once', async () => {
    const jwt = await assertion();
    expect((await revokeWith(jwt)).status).toBe(200);
    const replay = await revokeWith(jwt);
    expect(replay.status).toBe(401);
    expect(replay.json.error).toBe('invalid_client');
  });

  it('a single-element aud array holding the issuer is accepted', async () => {
    expect((await revokeWith(await assertion({ aud: [server.issuer] }))).status).toBe(200);
  });

  it('redeems a code at the token endpoint with an assertion', async () => {
    const v = verifier();
    const u = new URL(`${server.issuer}/authorize`);
    for (const [k, val] of Object.entries({
      client_id: clientId,
      redirect_uri: REDIRECT,
      response_type: 'code',
      code_challenge: challenge(v),
      code_challenge_method: 'S256',
      state: 'st',
    }))
      u.searchParams.set(k, val);
    const callback = await new FormBrowser().authorize(u.href, server.origin, ALICE);
    const token = await postForm(`${server.issuer}/token`, {
      grant_type: 'authorization_code',
      code: callback.searchParams.get('code')!,
      code_verifier: v,
      redirect_uri: REDIRECT,
      client_assertion_type: JWT_BEARER,
      client_assertion: await assertion(),
    });
    expect(token.status).toBe(200);
    expect(token.json.access_token).toBeTruthy();
  });

  it.each([
    ['iat an hour in the future (exp - iat within the cap)', () => ({ iat: now() + 3600, exp: now() + 3600 + 300 })],
    [
      'a 10-year assertion with iat 10 years ahead',
      () => ({ iat: now() + 315_360_000 - 600, exp: now() + 315_360_000 }),
    ],
    ['iat beyond the clock skew (now + 61 s)', () => ({ iat: now() + 61, exp: now() + 300 })],
    ['exp - now beyond the cap (now + 661 s, iat now)', () => ({ exp: now() + 661 })],
    ['exp - now beyond the cap with no iat', () => ({ iat: undefined, exp: now() + 3600 })],
    ['exp - iat beyond the cap (iat in the past)', () => ({ iat: now() - 400, exp: now() + 300 })],
    ['aud = the token endpoint URL', () => ({ aud: `${server.issuer}/token` })],
    [
      'aud = [issuer, token endpoint URL] (not the sole value)',
      () => ({ aud: [server.issuer, `${server.issuer}/token`] }),
    ],
    ['aud = another issuer', () => ({ aud: 'https://other.example.com' })],
  ])('refuses %s with 401 invalid_client', async (_label, claims) => {
    const res = await revokeWith(await assertion(claims()));
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('invalid_client');
  });

  it('tolerates a client clock up to 60 s ahead (iat now + 60, exp iat + 600)', async () => {
    expect((await revokeWith(await assertion({ iat: now() + 60, exp: now() + 660 }))).status).toBe(200);
  });
});

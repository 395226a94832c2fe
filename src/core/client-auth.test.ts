import { describe, expect, it } from 'vitest';
import {
  authenticateClient,
  hashAdminSecret,
  newClientSecret,
  parseBasicAuth,
  presentedCredentials,
  verifyClientSecret,
  type ClientResolver,
  type PresentedClientCredentials,
} from './client-auth.js';
import { ManualClock } from './clock.js';
import { keyedHash } from './crypto.js';
import { InvalidClient, InvalidRequest, OAuthError } from '../model/errors.js';
import { hashPassword } from './password.js';
import type { ClientRecord, TokenEndpointAuthMethod } from '../model/records.js';
import { thrown } from '../../test/helpers/thrown.js';

const PEPPER = 'test-pepper-0123456789';
const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);
const BASIC_CHALLENGE = 'Basic realm="gatehouse"';

/** form-urlencode as RFC 6749 §2.3.1 / Appendix B require (space as +). */
const formEncode = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString('base64')}`;

function client(overrides: Partial<ClientRecord> & { tokenEndpointAuthMethod: TokenEndpointAuthMethod }): ClientRecord {
  return {
    clientId: 'client-1',
    redirectUris: ['https://app.example.com/cb'],
    grantTypes: ['authorization_code'],
    responseTypes: ['code'],
    scope: [],
    applicationType: 'web',
    source: 'dynamic',
    createdAt: NOW - 1000,
    updatedAt: NOW - 1000,
    clientSecretExpiresAt: 0,
    ...overrides,
  };
}

class MemoryResolver implements ClientResolver {
  readonly lookups: string[] = [];
  constructor(private readonly clients: ClientRecord[]) {}
  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    this.lookups.push(clientId);
    return this.clients.find((c) => c.clientId === clientId);
  }
}

async function rejection(p: Promise<unknown>): Promise<OAuthError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OAuthError) return err;
    throw err;
  }
  throw new Error('expected an OAuthError');
}

const syncError = (fn: () => unknown): OAuthError => thrown(fn, OAuthError);

describe('parseBasicAuth (RFC 6749 §2.3.1)', () => {
  it('decodes id and secret', () => {
    expect(parseBasicAuth(basic('client-1', 's3cret'))).toEqual({ clientId: 'client-1', clientSecret: 's3cret' });
  });

  it('form-urlencoded parts: colon, plus, percent, space, @, / and non-ASCII survive', () => {
    const id = 'my client:1';
    const secret = 'p@ss:w/rd+%~ é';
    expect(parseBasicAuth(basic(id, secret))).toEqual({ clientId: id, clientSecret: secret });
  });

  it('splits on the first colon only (a raw colon in the secret stays)', () => {
    const header = `Basic ${Buffer.from('id:a:b').toString('base64')}`;
    expect(parseBasicAuth(header)).toEqual({ clientId: 'id', clientSecret: 'a:b' });
  });

  it('treats a literal + as a space (application/x-www-form-urlencoded)', () => {
    expect(parseBasicAuth(`Basic ${Buffer.from('a+b:c+d').toString('base64')}`)).toEqual({
      clientId: 'a b',
      clientSecret: 'c d',
    });
  });

  it('accepts the scheme case-insensitively and surrounding whitespace', () => {
    expect(parseBasicAuth(`  basic ${Buffer.from('id:s').toString('base64')} `)).toEqual({
      clientId: 'id',
      clientSecret: 's',
    });
  });

  it('allows an empty secret', () => {
    expect(parseBasicAuth(`Basic ${Buffer.from('id:').toString('base64')}`)).toEqual({
      clientId: 'id',
      clientSecret: '',
    });
  });

  it.each([
    ['no colon', `Basic ${Buffer.from('idonly').toString('base64')}`],
    ['not base64', 'Basic ***'],
    ['missing credentials', 'Basic '],
    ['Bearer scheme', 'Bearer abc'],
  ])('refuses a malformed header with invalid_client and WWW-Authenticate Basic: %s', (_label, header) => {
    const err = syncError(() => parseBasicAuth(header));
    expect(err).toBeInstanceOf(InvalidClient);
    expect(err.status).toBe(401);
    expect(err.headers['www-authenticate']).toBe(BASIC_CHALLENGE);
  });

  it('refuses a bad percent-encoding with invalid_request', () => {
    const err = syncError(() => parseBasicAuth(`Basic ${Buffer.from('id:%zz').toString('base64')}`));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err.description).toBe('malformed Basic authorization header encoding');
  });
});

describe('presentedCredentials (RFC 6749 §2.3)', () => {
  it('Basic header → client_secret_basic', () => {
    expect(presentedCredentials(basic('client-1', 'sec'), {})).toEqual({
      method: 'client_secret_basic',
      clientId: 'client-1',
      clientSecret: 'sec',
    });
  });

  it('Basic header with special characters decodes them', () => {
    expect(presentedCredentials(basic('urn:client 1', 'a+b&c=d%'), {})).toEqual({
      method: 'client_secret_basic',
      clientId: 'urn:client 1',
      clientSecret: 'a+b&c=d%',
    });
  });

  it('Basic header plus a matching body client_id is fine', () => {
    expect(presentedCredentials(basic('client-1', 'sec'), { client_id: 'client-1' })?.method).toBe(
      'client_secret_basic',
    );
  });

  it('refuses Basic together with a body client_secret (only one method, RFC 6749 §2.3)', () => {
    const err = syncError(() =>
      presentedCredentials(basic('client-1', 'sec'), { client_id: 'client-1', client_secret: 'sec' }),
    );
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err.description).toBe('client authentication must use only one method');
  });

  it('refuses a body client_id that differs from the Basic one', () => {
    const err = syncError(() => presentedCredentials(basic('client-1', 'sec'), { client_id: 'client-2' }));
    expect(err).toBeInstanceOf(InvalidRequest);
    expect(err.description).toBe('client_id does not match the authenticated client');
  });

  it('body client_id + client_secret → client_secret_post', () => {
    expect(presentedCredentials(undefined, { client_id: 'c', client_secret: 's' })).toEqual({
      method: 'client_secret_post',
      clientId: 'c',
      clientSecret: 's',
    });
  });

  it('body client_id alone → none (public client)', () => {
    expect(presentedCredentials(undefined, { client_id: 'c' })).toEqual({ method: 'none', clientId: 'c' });
  });

  it('nothing presented → undefined', () => {
    expect(presentedCredentials(undefined, {})).toBeUndefined();
    expect(presentedCredentials(undefined, { client_secret: 's' })).toBeUndefined();
  });

  it('a non-Basic Authorization header is ignored for client auth', () => {
    expect(presentedCredentials('Bearer abc', { client_id: 'c' })).toEqual({ method: 'none', clientId: 'c' });
  });
});

describe('newClientSecret / hashAdminSecret / verifyClientSecret', () => {
  it('newClientSecret: 256-bit secret, stored as hmac:<HMAC-SHA-256(pepper, secret)>', async () => {
    const { secret, hash } = newClientSecret(PEPPER);
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(hash).toBe(`hmac:${keyedHash(PEPPER, secret)}`);
    expect(await verifyClientSecret(secret, hash, PEPPER)).toBe(true);
    expect(newClientSecret(PEPPER).secret).not.toBe(secret);
  });

  it('hmac form: wrong secret or wrong pepper is refused', async () => {
    const { secret, hash } = newClientSecret(PEPPER);
    expect(await verifyClientSecret(`${secret}x`, hash, PEPPER)).toBe(false);
    expect(await verifyClientSecret(secret, hash, 'other-pepper')).toBe(false);
    expect(await verifyClientSecret('', hash, PEPPER)).toBe(false);
  });

  it('scrypt form: verifies the right secret only', async () => {
    const stored = await hashPassword('short-secret', 14);
    expect(await verifyClientSecret('short-secret', stored, PEPPER)).toBe(true);
    expect(await verifyClientSecret('short-secreT', stored, PEPPER)).toBe(false);
  });

  it('unknown stored forms are refused (including the plaintext secret itself)', async () => {
    expect(await verifyClientSecret('plain', 'plain', PEPPER)).toBe(false);
    expect(await verifyClientSecret('x', '', PEPPER)).toBe(false);
    expect(await verifyClientSecret('x', 'sha256:abc', PEPPER)).toBe(false);
  });

  it('hashAdminSecret: >= 32 chars uses hmac, shorter uses scrypt; both verify', async () => {
    const long = 'L'.repeat(32);
    const longHash = await hashAdminSecret(long, PEPPER);
    expect(longHash).toBe(`hmac:${keyedHash(PEPPER, long)}`);
    expect(await verifyClientSecret(long, longHash, PEPPER)).toBe(true);

    const short = 'S'.repeat(31);
    const shortHash = await hashAdminSecret(short, PEPPER);
    expect(shortHash.startsWith('scrypt$')).toBe(true);
    expect(await verifyClientSecret(short, shortHash, PEPPER)).toBe(true);
  });
});

describe('authenticateClient (RFC 6749 §2.3, §5.2)', () => {
  const clock = new ManualClock(NOW);
  const { secret, hash } = newClientSecret(PEPPER);
  const confidentialBasic = client({
    clientId: 'conf-basic',
    tokenEndpointAuthMethod: 'client_secret_basic',
    clientSecretHash: hash,
  });
  const confidentialPost = client({
    clientId: 'conf-post',
    tokenEndpointAuthMethod: 'client_secret_post',
    clientSecretHash: hash,
  });
  const publicClient = client({ clientId: 'public', tokenEndpointAuthMethod: 'none' });
  const expiring = client({
    clientId: 'expiring',
    tokenEndpointAuthMethod: 'client_secret_basic',
    clientSecretHash: hash,
    clientSecretExpiresAt: NOW + 60_000,
  });
  const noSecretStored = client({ clientId: 'no-hash', tokenEndpointAuthMethod: 'client_secret_basic' });
  const jwtClient = client({ clientId: 'jwt', tokenEndpointAuthMethod: 'private_key_jwt' });
  const resolver = new MemoryResolver([
    confidentialBasic,
    confidentialPost,
    publicClient,
    expiring,
    noSecretStored,
    jwtClient,
  ]);
  const deps = { clients: resolver, pepper: PEPPER, clock };

  const auth = (p: PresentedClientCredentials) => authenticateClient(p, deps);

  it('accepts client_secret_basic with the right secret and returns the record', async () => {
    const result = await auth({ method: 'client_secret_basic', clientId: 'conf-basic', clientSecret: secret });
    expect(result).toBe(confidentialBasic);
  });

  it('accepts client_secret_post with the right secret', async () => {
    expect((await auth({ method: 'client_secret_post', clientId: 'conf-post', clientSecret: secret })).clientId).toBe(
      'conf-post',
    );
  });

  it('accepts a public client presenting only its id', async () => {
    expect((await auth({ method: 'none', clientId: 'public' })).clientId).toBe('public');
  });

  it('unknown client → invalid_client 401 with WWW-Authenticate Basic when Basic was used', async () => {
    const err = await rejection(auth({ method: 'client_secret_basic', clientId: 'nope', clientSecret: secret }));
    expect(err).toBeInstanceOf(InvalidClient);
    expect(err.code).toBe('invalid_client');
    expect(err.status).toBe(401);
    expect(err.description).toBe('client authentication failed');
    expect(err.detail).toBe('unknown client');
    expect(err.headers).toEqual({ 'www-authenticate': BASIC_CHALLENGE });
    expect(err.redirectable).toBe(false);
  });

  it('unknown client via post → invalid_client without WWW-Authenticate', async () => {
    const err = await rejection(auth({ method: 'client_secret_post', clientId: 'nope', clientSecret: secret }));
    expect(err).toBeInstanceOf(InvalidClient);
    expect(err.headers).toEqual({});
  });

  it('wrong secret → invalid_client (same public description, detail for logs)', async () => {
    const err = await rejection(
      auth({ method: 'client_secret_basic', clientId: 'conf-basic', clientSecret: `${secret}x` }),
    );
    expect(err).toBeInstanceOf(InvalidClient);
    expect(err.description).toBe('client authentication failed');
    expect(err.detail).toBe('wrong secret');
    expect(err.headers['www-authenticate']).toBe(BASIC_CHALLENGE);
  });

  it('wrong secret via post → no WWW-Authenticate header', async () => {
    const err = await rejection(auth({ method: 'client_secret_post', clientId: 'conf-post', clientSecret: 'wrong' }));
    expect(err.detail).toBe('wrong secret');
    expect(err.headers['www-authenticate']).toBeUndefined();
  });

  it('expired secret (RFC 7591 client_secret_expires_at) is refused, even when correct', async () => {
    const c = new ManualClock(NOW);
    const d = { ...deps, clock: c };
    await expect(
      authenticateClient({ method: 'client_secret_basic', clientId: 'expiring', clientSecret: secret }, d),
    ).resolves.toBe(expiring);
    c.set(NOW + 60_000); // exactly at expiry
    const err = await rejection(
      authenticateClient({ method: 'client_secret_basic', clientId: 'expiring', clientSecret: secret }, d),
    );
    expect(err.detail).toBe('secret expired');
    expect(err.headers['www-authenticate']).toBe(BASIC_CHALLENGE);
  });

  it('clientSecretExpiresAt 0 means never expires', async () => {
    const far = { ...deps, clock: new ManualClock(NOW + 100 * 365 * 24 * 3600_000) };
    await expect(
      authenticateClient({ method: 'client_secret_basic', clientId: 'conf-basic', clientSecret: secret }, far),
    ).resolves.toBe(confidentialBasic);
  });

  it('a client registered for client_secret_basic may send its secret in the body (RFC 6749 §2.3.1)', async () => {
    await expect(auth({ method: 'client_secret_post', clientId: 'conf-basic', clientSecret: secret })).resolves.toBe(
      confidentialBasic,
    );
    const err = await rejection(auth({ method: 'client_secret_post', clientId: 'conf-basic', clientSecret: 'wrong' }));
    expect(err.detail).toBe('wrong secret');
    expect(err.headers).toEqual({});
  });

  it('a client registered for client_secret_post may use Basic; a wrong secret still gets WWW-Authenticate Basic', async () => {
    await expect(auth({ method: 'client_secret_basic', clientId: 'conf-post', clientSecret: secret })).resolves.toBe(
      confidentialPost,
    );
    const err = await rejection(auth({ method: 'client_secret_basic', clientId: 'conf-post', clientSecret: 'wrong' }));
    expect(err.detail).toBe('wrong secret');
    expect(err.headers['www-authenticate']).toBe(BASIC_CHALLENGE);
  });

  it('a confidential client sending no secret is refused', async () => {
    const err = await rejection(auth({ method: 'none', clientId: 'conf-basic' }));
    expect(err.detail).toBe('confidential client sent no credentials');
  });

  it('a public client sending a secret (Basic) is refused with WWW-Authenticate', async () => {
    const err = await rejection(auth({ method: 'client_secret_basic', clientId: 'public', clientSecret: 'anything' }));
    expect(err.detail).toBe('public client presented a secret');
    expect(err.headers['www-authenticate']).toBe(BASIC_CHALLENGE);
  });

  it('a public client sending a secret in the body is refused', async () => {
    const err = await rejection(auth({ method: 'client_secret_post', clientId: 'public', clientSecret: 'anything' }));
    expect(err.detail).toBe('public client presented a secret');
    expect(err.headers).toEqual({});
  });

  it('a confidential client without a stored secret hash cannot authenticate', async () => {
    const err = await rejection(auth({ method: 'client_secret_basic', clientId: 'no-hash', clientSecret: '' }));
    expect(err.detail).toBe('no secret');
  });

  it('a private_key_jwt client cannot authenticate with a secret', async () => {
    const err = await rejection(auth({ method: 'client_secret_basic', clientId: 'jwt', clientSecret: secret }));
    expect(err.detail).toBe('client must use private_key_jwt');
  });

  it('looks the client up by the presented id', async () => {
    resolver.lookups.length = 0;
    await auth({ method: 'none', clientId: 'public' });
    expect(resolver.lookups).toEqual(['public']);
  });

  it('works end to end from a Basic header with special characters', async () => {
    const weird = newClientSecret(PEPPER);
    const c = client({
      clientId: 'urn:app:1 2',
      tokenEndpointAuthMethod: 'client_secret_basic',
      clientSecretHash: weird.hash,
    });
    const presented = presentedCredentials(basic('urn:app:1 2', weird.secret), {});
    const result = await authenticateClient(presented!, { ...deps, clients: new MemoryResolver([c]) });
    expect(result.clientId).toBe('urn:app:1 2');
  });
});

describe('private_key_jwt client assertions (RFC 7523 §2.2, §3)', () => {
  const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const assertion = (payload: Record<string, unknown>) => `${b64({ alg: 'ES256' })}.${b64(payload)}.c2ln`;
  const good = assertion({
    iss: 'https://client.example/meta.json',
    sub: 'https://client.example/meta.json',
    aud: 'x',
  });

  describe('presentedCredentials', () => {
    it('a jwt-bearer assertion → private_key_jwt, client id from iss = sub', () => {
      expect(presentedCredentials(undefined, { client_assertion: good, client_assertion_type: JWT_BEARER })).toEqual({
        method: 'private_key_jwt',
        clientId: 'https://client.example/meta.json',
        clientAssertion: good,
      });
    });

    it('an HMAC-signed (HS*) assertion → client_secret_jwt; any other alg → private_key_jwt', () => {
      const jwt = (alg: unknown) => `${b64({ alg })}.${b64({ iss: 'c', sub: 'c' })}.c2ln`;
      const method = (alg: unknown) =>
        presentedCredentials(undefined, { client_assertion: jwt(alg), client_assertion_type: JWT_BEARER })?.method;
      expect(method('HS256')).toBe('client_secret_jwt');
      expect(method('HS512')).toBe('client_secret_jwt');
      for (const alg of ['RS256', 'ES256', 'EdDSA', 'none', 'hs256', 42, undefined])
        expect(method(alg)).toBe('private_key_jwt');
      const unreadableHeader = `!!.${b64({ iss: 'c', sub: 'c' })}.c2ln`;
      expect(
        presentedCredentials(undefined, { client_assertion: unreadableHeader, client_assertion_type: JWT_BEARER })
          ?.method,
      ).toBe('private_key_jwt');
    });

    it('a matching client_id is fine; a different one is invalid_client', () => {
      expect(
        presentedCredentials(undefined, {
          client_assertion: good,
          client_assertion_type: JWT_BEARER,
          client_id: 'https://client.example/meta.json',
        })?.method,
      ).toBe('private_key_jwt');
      const err = syncError(() =>
        presentedCredentials(undefined, {
          client_assertion: good,
          client_assertion_type: JWT_BEARER,
          client_id: 'other',
        }),
      );
      expect(err).toBeInstanceOf(InvalidClient);
      expect(err.description).toBe('client assertion issuer is missing or does not match client_id');
    });

    it.each([
      [
        'wrong type',
        { client_assertion: good, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer' },
      ],
      ['type without assertion', { client_assertion_type: JWT_BEARER }],
      ['assertion without type', { client_assertion: good }],
      ['empty assertion', { client_assertion: '', client_assertion_type: JWT_BEARER }],
    ])('refuses %s with invalid_request', (_label, form) => {
      const err = syncError(() => presentedCredentials(undefined, form));
      expect(err).toBeInstanceOf(InvalidRequest);
      expect(err.description).toBe(`client_assertion_type must be ${JWT_BEARER}`);
    });

    it('refuses an assertion combined with a secret or Basic (only one method)', () => {
      const both = { client_assertion: good, client_assertion_type: JWT_BEARER };
      expect(syncError(() => presentedCredentials(undefined, { ...both, client_secret: 's' })).description).toBe(
        'client authentication must use only one method',
      );
      expect(syncError(() => presentedCredentials(basic('a', 'b'), both)).description).toBe(
        'client authentication must use only one method',
      );
    });

    it.each([
      ['iss != sub', assertion({ iss: 'a', sub: 'b' })],
      ['no iss', assertion({ sub: 'a' })],
      ['non-string iss', assertion({ iss: 1, sub: 1 })],
      ['not a JWT', 'opaque'],
      ['payload not JSON', `${b64({})}.bm90IGpzb24.sig`],
    ])('refuses an assertion whose issuer cannot name the client: %s', (_label, jwt) => {
      const err = syncError(() =>
        presentedCredentials(undefined, { client_assertion: jwt, client_assertion_type: JWT_BEARER }),
      );
      expect(err).toBeInstanceOf(InvalidClient);
    });
  });

  describe('authenticateClient', () => {
    const clock = new ManualClock(NOW);
    const jwtClient = client({ clientId: 'jwt-client', tokenEndpointAuthMethod: 'private_key_jwt' });
    const secretClient = client({
      clientId: 'secret-client',
      tokenEndpointAuthMethod: 'client_secret_post',
      clientSecretHash: newClientSecret(PEPPER).hash,
    });
    const resolver = new MemoryResolver([
      jwtClient,
      secretClient,
      client({ clientId: 'pub', tokenEndpointAuthMethod: 'none' }),
    ]);
    const calls: [string, string][] = [];
    const verifyAssertion = async (c: ClientRecord, a: string) => {
      calls.push([c.clientId, a]);
      return a === 'valid';
    };
    const deps = { clients: resolver, pepper: PEPPER, clock, verifyAssertion };

    it('accepts when the verifier accepts, passing it the resolved client and the assertion', async () => {
      calls.length = 0;
      await expect(
        authenticateClient({ method: 'private_key_jwt', clientId: 'jwt-client', clientAssertion: 'valid' }, deps),
      ).resolves.toBe(jwtClient);
      expect(calls).toEqual([['jwt-client', 'valid']]);
    });

    it('refuses when the verifier refuses', async () => {
      const err = await rejection(
        authenticateClient({ method: 'private_key_jwt', clientId: 'jwt-client', clientAssertion: 'forged' }, deps),
      );
      expect(err).toBeInstanceOf(InvalidClient);
      expect(err.detail).toBe('client assertion invalid');
      expect(err.headers).toEqual({});
    });

    it('refuses when no verifier is configured (fails closed)', async () => {
      const { verifyAssertion: _v, ...noVerifier } = deps;
      const err = await rejection(
        authenticateClient({ method: 'private_key_jwt', clientId: 'jwt-client', clientAssertion: 'valid' }, noVerifier),
      );
      expect(err.detail).toBe('client must use private_key_jwt');
    });

    it('refuses a private_key_jwt client presenting a secret', async () => {
      const err = await rejection(
        authenticateClient({ method: 'client_secret_post', clientId: 'jwt-client', clientSecret: 'x' }, deps),
      );
      expect(err.detail).toBe('client must use private_key_jwt');
    });

    it('refuses an assertion for a secret-based client without calling the verifier', async () => {
      calls.length = 0;
      const err = await rejection(
        authenticateClient({ method: 'private_key_jwt', clientId: 'secret-client', clientAssertion: 'valid' }, deps),
      );
      expect(err.detail).toBe('client must use client_secret_post');
      expect(calls).toEqual([]);
    });

    describe('client_secret_jwt', () => {
      const signer = client({
        clientId: 'signer',
        tokenEndpointAuthMethod: 'client_secret_jwt',
        clientSecretHash: newClientSecret(PEPPER).hash,
        clientSecretExpiresAt: NOW + 60_000,
      });
      const signers = { ...deps, clients: new MemoryResolver([signer, jwtClient]) };

      it('accepts what the verifier accepts, and no other method', async () => {
        await expect(
          authenticateClient({ method: 'client_secret_jwt', clientId: 'signer', clientAssertion: 'valid' }, signers),
        ).resolves.toBe(signer);
        for (const presented of [
          { method: 'private_key_jwt', clientId: 'signer', clientAssertion: 'valid' },
          { method: 'client_secret_basic', clientId: 'signer', clientSecret: 'x' },
          { method: 'client_secret_post', clientId: 'signer', clientSecret: 'x' },
        ] as const) {
          expect((await rejection(authenticateClient(presented, signers))).detail).toBe(
            'client must use client_secret_jwt',
          );
        }
        const hmacForKeyClient = await rejection(
          authenticateClient(
            { method: 'client_secret_jwt', clientId: 'jwt-client', clientAssertion: 'valid' },
            signers,
          ),
        );
        expect(hmacForKeyClient.detail).toBe('client must use private_key_jwt');
      });

      it('refuses every assertion once the secret has expired, without asking the verifier', async () => {
        calls.length = 0;
        const later = { ...signers, clock: new ManualClock(NOW + 60_000) };
        const err = await rejection(
          authenticateClient({ method: 'client_secret_jwt', clientId: 'signer', clientAssertion: 'valid' }, later),
        );
        expect(err.detail).toBe('secret expired');
        expect(calls).toEqual([]);
      });
    });

    it('refuses an assertion from a public client', async () => {
      const err = await rejection(
        authenticateClient({ method: 'private_key_jwt', clientId: 'pub', clientAssertion: 'valid' }, deps),
      );
      expect(err.detail).toBe('public client presented a secret');
    });
  });
});

/**
 * gatehouse/resource and DPoP end to end: a real Gatehouse issues DPoP-bound tokens (client_credentials with a proof
 * from oauth4webapi's DPoP handle), and the verifier, in JWT and in introspection mode, accepts them only with a
 * proof of that key for the resource request; the token request's own proof is worth nothing at the resource; a
 * replay store shared by two verifiers (two replicas of a resource server) refuses a proof the other accepted;
 * server nonces at the resource (use_dpop_nonce with DPoP-Nonce, oauth4webapi retries with it).
 */
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createResourceVerifier,
  dpopAccessTokenHash,
  ResourceAuthError,
  withBearerAuth,
  type DpopReplayStore,
  type ResourceVerifier,
} from '../../src/resource/index.js';
import { basic, postForm } from '../helpers/oauth.js';
import { startServer, type TestServer } from '../helpers/server.js';

const RESOURCE = 'https://mcp.example.com/mcp';
const insecure = { [oauth.allowInsecureRequests]: true } as const;
const MACHINE = { id: 'machine', secret: 'machine-secret-0123456789abcdef-0123456789' };
const RS = { id: 'mcp-server', secret: 'mcp-server-secret-0123456789abcdef-01234' };

interface Key {
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
}

async function newKey(): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = await exportJWK(publicKey);
  return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') };
}

function proof(key: Key, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT({ jti: randomUUID(), iat: Math.floor(Date.now() / 1000), ...claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.jwk })
    .sign(key.privateKey);
}

async function rejection(promise: Promise<unknown>): Promise<ResourceAuthError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ResourceAuthError);
  return error as ResourceAuthError;
}

describe('gatehouse/resource with DPoP tokens from a real Gatehouse', () => {
  let server: TestServer;
  let key: Key;
  let token: string;
  let tokenProof: string;

  beforeAll(async () => {
    server = await startServer({
      scopes: ['mcp'],
      introspection: { allowedClients: [RS.id] },
      clients: [
        { client_id: MACHINE.id, client_secret: MACHINE.secret, grant_types: ['client_credentials'], scope: 'mcp' },
        { client_id: RS.id, client_secret: RS.secret, grant_types: ['client_credentials'] },
      ],
    });
    key = await newKey();
    tokenProof = await proof(key, { htm: 'POST', htu: `${server.issuer}/token` });
    const res = await postForm(
      `${server.origin}/token`,
      { grant_type: 'client_credentials', scope: 'mcp', resource: RESOURCE },
      { authorization: basic(MACHINE.id, MACHINE.secret), dpop: tokenProof },
    );
    expect(res.json.token_type).toBe('DPoP');
    token = res.json.access_token as string;
  });
  afterAll(async () => {
    await server?.close();
  });

  const resourceProof = (claims: Record<string, unknown> = {}, signer = key) =>
    proof(signer, { htm: 'GET', htu: RESOURCE, ath: dpopAccessTokenHash(token), ...claims });
  const asDpop = async (verifier: ResourceVerifier, dpopProof: string, url = RESOURCE, method = 'GET') =>
    verifier.verify(token, { scheme: 'DPoP', dpop: { proof: dpopProof, method, url } });

  for (const mode of ['jwt', 'introspection'] as const) {
    it(`${mode} mode: accepts the token with a proof of its key; refuses Bearer use, the token request's proof, another key`, async () => {
      const verifier = createResourceVerifier({
        issuer: server.issuer,
        resource: RESOURCE,
        mode,
        ...(mode === 'introspection' && { introspection: { clientId: RS.id, clientSecret: RS.secret } }),
      });
      const info = await asDpop(verifier, await resourceProof());
      expect(info).toMatchObject({ clientId: MACHINE.id, scopes: ['mcp'], dpopJkt: key.jkt });
      expect(info.claims.cnf).toEqual({ jkt: key.jkt });

      const asBearer = await rejection(verifier.verify(token));
      expect(asBearer).toMatchObject({ code: 'invalid_token', status: 401, scheme: 'DPoP' });
      // The proof of the token request is for POST /token at the issuer: not this request.
      expect(await rejection(asDpop(verifier, tokenProof))).toMatchObject({ code: 'invalid_dpop_proof' });
      const other = await newKey();
      expect(await rejection(asDpop(verifier, await resourceProof({}, other)))).toMatchObject({
        code: 'invalid_token',
      });
      expect(await rejection(asDpop(verifier, await resourceProof({ ath: dpopAccessTokenHash('x') })))).toMatchObject({
        code: 'invalid_dpop_proof',
      });
      const old = await proof(key, {
        htm: 'GET',
        htu: RESOURCE,
        ath: dpopAccessTokenHash(token),
        iat: Math.floor(Date.now() / 1000) - 120,
      });
      expect(await rejection(asDpop(verifier, old))).toMatchObject({ code: 'invalid_dpop_proof' });
    });
  }

  it('a replay store shared by two verifiers (two replicas) refuses a proof the other accepted; by default each is its own', async () => {
    const seen = new Map<string, number>();
    const shared: DpopReplayStore = {
      firstUse(id, expiresAt) {
        const now = Date.now();
        if ((seen.get(id) ?? 0) > now) return false;
        seen.set(id, expiresAt);
        return true;
      },
    };
    const a = createResourceVerifier({ issuer: server.issuer, resource: RESOURCE, dpop: { replayStore: shared } });
    const b = createResourceVerifier({ issuer: server.issuer, resource: RESOURCE, dpop: { replayStore: shared } });
    const once = await resourceProof();
    await asDpop(a, once);
    expect(await rejection(asDpop(a, once))).toMatchObject({ code: 'invalid_dpop_proof' });
    expect(await rejection(asDpop(b, once))).toMatchObject({ code: 'invalid_dpop_proof' });
    expect(seen.size).toBe(1);
    // Without a shared store two verifiers know nothing of each other: why replicas must share one.
    const c = createResourceVerifier({ issuer: server.issuer, resource: RESOURCE });
    const d = createResourceVerifier({ issuer: server.issuer, resource: RESOURCE });
    const twice = await resourceProof();
    await asDpop(c, twice);
    await asDpop(d, twice);
  });

  it('nonces: use_dpop_nonce with DPoP-Nonce over the fetch adapter; oauth4webapi retries with the nonce', async () => {
    const verifier = createResourceVerifier({
      issuer: server.issuer,
      resource: RESOURCE,
      dpop: { nonce: { secret: 'a-resource-server-secret-of-32-characters' } },
    });
    const handler = withBearerAuth(verifier, (_request, auth) => Response.json({ jkt: auth.dpopJkt }));
    // oauth4webapi's protected-resource request, answered by the fetch adapter in process.
    const client: oauth.Client = { client_id: MACHINE.id };
    const keyPair = await oauth.generateKeyPair('ES256');
    const DPoP = oauth.DPoP(client, keyPair);
    const issued = await oauth.processClientCredentialsResponse(
      { issuer: server.issuer, token_endpoint: `${server.issuer}/token` },
      client,
      await oauth.clientCredentialsGrantRequest(
        { issuer: server.issuer, token_endpoint: `${server.issuer}/token` },
        client,
        oauth.ClientSecretBasic(MACHINE.secret),
        { scope: 'mcp', resource: RESOURCE },
        { DPoP, ...insecure },
      ),
    );
    expect(issued.token_type).toBe('dpop');
    const call = () =>
      oauth.protectedResourceRequest(issued.access_token, 'GET', new URL(RESOURCE), undefined, undefined, {
        DPoP,
        [oauth.customFetch]: (url, init) => handler(new Request(url, init as RequestInit)),
      });
    let first: unknown;
    try {
      await call();
    } catch (err) {
      first = err;
    }
    expect(oauth.isDPoPNonceError(first)).toBe(true);
    const response = await call();
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ jkt: await calculateJwkThumbprint(await exportJWK(keyPair.publicKey)) });
  });

  it('dpop: false refuses DPoP-bound tokens and names only Bearer in challenges', async () => {
    const verifier = createResourceVerifier({ issuer: server.issuer, resource: RESOURCE, dpop: false });
    expect(verifier.dpopAlgorithms).toEqual([]);
    expect(await rejection(verifier.verify(token))).toMatchObject({ code: 'invalid_token' });
    const handler = withBearerAuth(verifier, () => new Response('ok'));
    const res = await handler(new Request(RESOURCE, { headers: { authorization: `DPoP ${token}` } }));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer resource_metadata="[^"]+"$/);
  });
});

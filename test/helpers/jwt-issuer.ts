/**
 * A JWT issuer for tests (an enterprise IdP issuing ID-JAGs, a Kubernetes or SPIFFE workload issuer): a real ES256
 * key (jose) whose JWK Set a local https server publishes, and a signer for any header and claims.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { startCimdServer, type CimdServer } from './cimd-server.js';

export interface TestIssuer {
  /** The `iss` of its JWTs. */
  issuer: string;
  jwksUri: string;
  /** PEM to trust for the jwks_uri (config trustedCaFile). */
  caFile: string;
  /** The server publishing the JWK Set (requests can be counted or answers changed through `docs`). */
  server: CimdServer;
  /** Signs `claims` (iss, iat, exp in 5 minutes and a fresh jti unless given; undefined values are left out). */
  sign(claims?: JWTPayload, header?: { typ?: string; kid?: string }): Promise<string>;
  /** The same, with a key that is not in the JWK Set but carries the published kid: a bad signature. */
  signWithUnpublishedKey(claims?: JWTPayload, header?: { typ?: string }): Promise<string>;
  /** Replaces the published key by a new one (kid `k2`, `k3`, ...): what the issuer signs from now on. */
  rotate(): Promise<void>;
  close(): void;
}

export async function startJwtIssuer(name: string): Promise<TestIssuer> {
  const server = await startCimdServer();
  const issuer = `${server.origin}/${name}`;
  const jwksPath = `/${name}/jwks.json`;
  let generation = 1;
  let current = await generateKeyPair('ES256', { extractable: true });
  const publish = async () => {
    const jwk = { ...(await exportJWK(current.publicKey)), kid: `k${generation}`, alg: 'ES256', use: 'sig' };
    server.docs.set(jwksPath, { body: JSON.stringify({ keys: [jwk] }), type: 'application/jwk-set+json' });
  };
  await publish();
  const now = () => Math.floor(Date.now() / 1000);
  const signWith = (key: CryptoKey, claims: JWTPayload, header: { typ?: string; kid?: string }) => {
    const payload: JWTPayload = { iss: issuer, iat: now(), exp: now() + 300, jti: randomUUID(), ...claims };
    for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
    const protectedHeader: { alg: string; kid: string; typ?: string } = { alg: 'ES256', kid: `k${generation}` };
    if (header.typ !== undefined) protectedHeader.typ = header.typ;
    if (header.kid !== undefined) protectedHeader.kid = header.kid;
    return new SignJWT(payload).setProtectedHeader(protectedHeader).sign(key);
  };
  return {
    issuer,
    jwksUri: `${server.origin}${jwksPath}`,
    caFile: server.caFile,
    server,
    sign: (claims = {}, header = {}) => signWith(current.privateKey, claims, header),
    async signWithUnpublishedKey(claims = {}, header = {}) {
      const other = await generateKeyPair('ES256');
      return signWith(other.privateKey, claims, header);
    },
    async rotate() {
      generation += 1;
      current = await generateKeyPair('ES256', { extractable: true });
      await publish();
    },
    close: () => server.close(),
  };
}

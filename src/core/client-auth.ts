/**
 * Client authentication at the token, pushed authorization request, revocation and introspection endpoints
 * (RFC 6749 §2.3, RFC 7591 §2 token_endpoint_auth_method, RFC 9126 §2). The HTTP edge extracts what the client
 * presented; this module decides.
 */
import { safeEqual, keyedHash, randomToken } from './crypto.js';
import { InvalidClient, InvalidRequest } from '../model/errors.js';
import { hashPassword, verifyPassword } from './password.js';
import type { Clock } from './clock.js';
import type { Sealer } from './sealing.js';
import type { ClientRecord, TokenEndpointAuthMethod } from '../model/records.js';

/** What the client presented, as parsed at the HTTP edge. */
export interface PresentedClientCredentials {
  method: TokenEndpointAuthMethod;
  clientId: string;
  clientSecret?: string;
  /** RFC 7523 §2.2 client assertion (private_key_jwt, or client_secret_jwt when it is HMAC-signed). */
  clientAssertion?: string;
}

/**
 * Verifies an RFC 7523 client assertion for a client, by its registered method (private_key_jwt: its keys;
 * client_secret_jwt: its sealed secret); supplied by the server (needs keys, store, issuer).
 */
export type AssertionVerifier = (client: ClientRecord, assertion: string) => Promise<boolean>;

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Looks a client up (the store, or a wrapper that also resolves Client ID Metadata Documents). */
export interface ClientResolver {
  getClient(clientId: string): Promise<ClientRecord | undefined>;
  /** Drops any cached copy after this process changed or deleted the client. */
  forget?(clientId: string): void;
}

/** A fresh server-generated client secret and its stored form (fast keyed hash: 256 bits cannot be guessed). */
export function newClientSecret(pepper: string): { secret: string; hash: string } {
  const secret = randomToken(32);
  return { secret, hash: `hmac:${keyedHash(pepper, secret)}` };
}

/**
 * The copy of a client_secret_jwt client's secret the server keeps (ClientRecord.clientSecretSealed): an HS256
 * assertion can only be checked with the secret itself, so it is sealed with `encryptionKey`, bound to the client.
 * Only with a sealer: without `encryptionKey` no client may use client_secret_jwt.
 */
export function sealClientSecret(sealer: Sealer, clientId: string, secret: string): string {
  return sealer.seal(secret, clientSecretAad(clientId));
}

/** The secret {@link sealClientSecret} sealed (throws ConfigError when no key of the sealer opens it). */
export function openClientSecret(sealer: Sealer, clientId: string, sealed: string): string {
  return sealer.open(sealed, clientSecretAad(clientId), `the client_secret_jwt secret of client ${clientId}`);
}

const clientSecretAad = (clientId: string) => `client-secret:${clientId}`;

/**
 * Stored form of an admin-chosen secret (config file). Long random-looking secrets get the fast keyed hash;
 * shorter ones are slow-hashed with scrypt so a stolen store does not reveal them.
 */
export async function hashAdminSecret(secret: string, pepper: string): Promise<string> {
  return secret.length >= 32 ? `hmac:${keyedHash(pepper, secret)}` : hashPassword(secret);
}

/** Checks a presented secret against its stored form, in constant time. */
export async function verifyClientSecret(secret: string, stored: string, pepper: string): Promise<boolean> {
  if (stored.startsWith('hmac:')) return safeEqual(`hmac:${keyedHash(pepper, secret)}`, stored);
  if (stored.startsWith('scrypt$')) return verifyPassword(secret, stored);
  return false;
}

/**
 * Authenticates a client. Fails with invalid_client (401; with `WWW-Authenticate: Basic` when Basic was used,
 * RFC 6749 §5.2) for an unknown client, a wrong or expired secret, or a method of the wrong kind (a secret for a
 * public or JWT-authenticating client, no secret or an assertion for a secret client, an assertion of the other JWT
 * method).
 */
export async function authenticateClient(
  presented: PresentedClientCredentials,
  deps: { clients: ClientResolver; pepper: string; clock: Clock; verifyAssertion?: AssertionVerifier },
): Promise<ClientRecord> {
  const headers: Record<string, string> =
    presented.method === 'client_secret_basic' ? { 'www-authenticate': 'Basic realm="gatehouse"' } : {};
  const fail = (detail: string) => new InvalidClient('client authentication failed', { detail, headers });

  const client = await deps.clients.getClient(presented.clientId);
  if (!client) throw fail('unknown client');
  const registered = client.tokenEndpointAuthMethod;
  if (registered === 'none') {
    if (presented.method !== 'none') throw fail('public client presented a secret');
    return client;
  }
  if (presented.method === 'none') throw fail('confidential client sent no credentials');
  if (registered === 'private_key_jwt' || registered === 'client_secret_jwt') {
    if (presented.method !== registered || !presented.clientAssertion || !deps.verifyAssertion)
      throw fail(`client must use ${registered}`);
    // The assertion is signed with the secret: once it expires, so do the assertions it signs.
    if (registered === 'client_secret_jwt' && secretExpired(client, deps.clock)) throw fail('secret expired');
    if (!(await deps.verifyAssertion(client, presented.clientAssertion))) throw fail('client assertion invalid');
    return client;
  }
  // A secret client may send its secret either way: RFC 6749 §2.3.1 makes Basic mandatory for every client issued
  // a secret, clients pick the method from our metadata rather than their registration, and both carry the same
  // secret. Only the secret methods are interchangeable; none and the JWT methods stay strict (a client_secret_jwt
  // client chose never to send its secret).
  if (presented.method !== 'client_secret_basic' && presented.method !== 'client_secret_post')
    throw fail(`client must use ${registered}`);
  if (!client.clientSecretHash || presented.clientSecret === undefined) throw fail('no secret');
  if (secretExpired(client, deps.clock)) throw fail('secret expired');
  if (!(await verifyClientSecret(presented.clientSecret, client.clientSecretHash, deps.pepper)))
    throw fail('wrong secret');
  return client;
}

function secretExpired(client: ClientRecord, clock: Clock): boolean {
  return client.clientSecretExpiresAt !== 0 && client.clientSecretExpiresAt <= clock.now();
}

/** Parses an `Authorization: Basic` header into client credentials (RFC 6749 §2.3.1: form-urlencoded parts). */
export function parseBasicAuth(header: string): { clientId: string; clientSecret: string } {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (!match)
    throw new InvalidClient('malformed Basic authorization header', {
      headers: { 'www-authenticate': 'Basic realm="gatehouse"' },
    });
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0)
    throw new InvalidClient('malformed Basic authorization header', {
      headers: { 'www-authenticate': 'Basic realm="gatehouse"' },
    });
  try {
    return {
      clientId: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' ')),
      clientSecret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' ')),
    };
  } catch {
    throw new InvalidRequest('malformed Basic authorization header encoding');
  }
}

/** The credential fields of a form (RFC 6749 §2.3.1, RFC 7523 §2.2), for presentedCredentials. */
export function formCredentials(params: Record<string, string | string[] | undefined>) {
  const one = (name: string) => params[name] as string | undefined;
  return {
    client_id: one('client_id'),
    client_secret: one('client_secret'),
    client_assertion: one('client_assertion'),
    client_assertion_type: one('client_assertion_type'),
  };
}

/** Decides which method the client used from the header and form fields; refuses more than one (RFC 6749 §2.3). */
export function presentedCredentials(
  authorization: string | undefined,
  form: { client_id?: string; client_secret?: string; client_assertion?: string; client_assertion_type?: string },
): PresentedClientCredentials | undefined {
  if (form.client_assertion !== undefined || form.client_assertion_type !== undefined) {
    if (form.client_assertion_type !== JWT_BEARER || !form.client_assertion) {
      throw new InvalidRequest(`client_assertion_type must be ${JWT_BEARER}`);
    }
    if (form.client_secret !== undefined || (authorization !== undefined && /^basic /i.test(authorization))) {
      throw new InvalidRequest('client authentication must use only one method');
    }
    // RFC 7523 §3: iss (= sub) names the client; client_id, if sent, must agree.
    const issuer = assertionIssuer(form.client_assertion);
    if (!issuer || (form.client_id !== undefined && form.client_id !== issuer)) {
      throw new InvalidClient('client assertion issuer is missing or does not match client_id');
    }
    // RFC 7518 §3.2: an HMAC (HS*) signature is made with the shared secret (client_secret_jwt), any other with a key.
    const method = /^HS/.test(assertionAlgorithm(form.client_assertion) ?? '')
      ? 'client_secret_jwt'
      : 'private_key_jwt';
    return { method, clientId: issuer, clientAssertion: form.client_assertion };
  }
  if (authorization !== undefined && /^basic /i.test(authorization)) {
    if (form.client_secret !== undefined) {
      throw new InvalidRequest('client authentication must use only one method');
    }
    const basic = parseBasicAuth(authorization);
    if (form.client_id !== undefined && form.client_id !== basic.clientId) {
      throw new InvalidRequest('client_id does not match the authenticated client');
    }
    return { method: 'client_secret_basic', clientId: basic.clientId, clientSecret: basic.clientSecret };
  }
  if (form.client_id === undefined) return undefined;
  if (form.client_secret !== undefined) {
    return { method: 'client_secret_post', clientId: form.client_id, clientSecret: form.client_secret };
  }
  return { method: 'none', clientId: form.client_id };
}

/** The unverified `alg` of a JWT's header, to tell the two JWT methods apart. */
function assertionAlgorithm(jwt: string): string | undefined {
  try {
    const header = JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString('utf8')) as { alg?: unknown };
    return typeof header.alg === 'string' ? header.alg : undefined;
  } catch {
    return undefined;
  }
}

/** The unverified `iss` of a JWT, to find the client whose keys will verify it. */
function assertionIssuer(jwt: string): string | undefined {
  const part = jwt.split('.')[1];
  if (!part) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as { iss?: unknown; sub?: unknown };
    return typeof payload.iss === 'string' && payload.iss === payload.sub ? payload.iss : undefined;
  } catch {
    return undefined;
  }
}

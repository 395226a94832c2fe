/**
 * Dynamic Client Registration (RFC 7591) and its management protocol (RFC 7592). Secrets and registration access
 * tokens are returned once and stored hashed. Unknown client_ids are never auto-registered.
 */
import { hashToken, randomId, randomToken, safeEqual } from '../core/crypto.js';
import { newClientSecret, sealClientSecret, verifyClientSecret } from '../core/client-auth.js';
import { clientMetadataResponse, parseRegistrationRequest, validateClientMetadata } from '../core/client-metadata.js';
import { InvalidClientMetadata, InvalidToken, OAuthError, RateLimited } from '../model/errors.js';
import { ADMIN_SCOPE } from '../core/scope.js';
import { bearerToken } from '../core/params.js';
import { addressBucket } from '../core/rate-limit-keys.js';
import { hitLimit, reportRateLimitHit } from '../core/rate-limit.js';
import { findDuplicate, hasSecret, remember, type DedupeDeps } from './registration-dedupe.js';
import type { ClientResolver } from '../core/client-auth.js';
import type { Deps, EndpointDeclaration } from '../context.js';
import type { AuditRequestContext } from '../core/audit.js';
import { clientRulesOf, refusedForRegistration } from '../grants/index.js';
import { type ClientRecord } from '../model/records.js';
import type { ClientStore, RateLimitStore } from '../model/ports.js';

/** POST /register: the policy, the registry's size, the per-address counter, and saving the new client. */
export type RegisterClientDeps = Pick<
  Deps,
  'config' | 'logger' | 'audit' | 'scopesSupported' | 'clock' | 'pepper' | 'sealer'
> &
  DedupeDeps & {
    storage: Pick<ClientStore, 'countClients' | 'saveClient'> & Pick<RateLimitStore, 'hitRateLimit'>;
  };
/** RFC 7592 management access: the client as stored, read straight from the store (its registration token's hash). */
type ManagementDeps = { storage: Pick<ClientStore, 'getClient'> };
/** GET /register/:id: management access, and the issuer for the client configuration URI. */
export type ReadRegistrationDeps = ManagementDeps & Pick<Deps, 'config'>;
/** PUT /register/:id: management access, plus validating and saving the new metadata and dropping cached copies. */
export type UpdateRegistrationDeps = ReadRegistrationDeps &
  Pick<Deps, 'scopesSupported' | 'clock' | 'pepper' | 'sealer' | 'audit'> & {
    storage: Pick<ClientStore, 'saveClient'>;
    clients: Pick<ClientResolver, 'forget'>;
  };
/** DELETE /register/:id: management access, plus the client's deletion (with everything issued to it). */
export type DeleteRegistrationDeps = ManagementDeps &
  Pick<Deps, 'logger' | 'audit'> & {
    storage: Pick<ClientStore, 'deleteClient'>;
    clients: Pick<ClientResolver, 'forget'>;
  };

/** POST /register, and below it each client's RFC 7592 configuration endpoint; advertised only when enabled. */
export const registerDeclaration = {
  path: '/register',
  subPaths: true,
  cors: true,
  metadata: (url, config) => (config.registration.enabled ? { registration_endpoint: url } : {}),
} satisfies EndpointDeclaration;

/**
 * Registration refused: disabled, or the initial access token is missing or wrong (RFC 7591 §3 treats the initial
 * access token as an OAuth 2.0 bearer token, so the refusal is RFC 6750 invalid_token, 401).
 */
class RegistrationForbidden extends OAuthError {
  constructor(description: string, headers: Record<string, string> = {}) {
    super('invalid_token', 401, description, { headers });
  }
}

/**
 * The store holds `registration.maxClients` clients: 503 temporarily_unavailable. Not a 4xx, since no change to the
 * request would help (invalid_client_metadata would send the client hunting for a fault in its metadata); it lasts
 * until clients are deleted, so no Retry-After is promised.
 */
class RegistryFull extends OAuthError {
  constructor() {
    super(
      'temporarily_unavailable',
      503,
      'this server cannot register more clients at the moment; contact its operator',
    );
  }
}

/** POST /register. `address` is the client's IP (request.ip). Returns the 201 body. */
export async function registerClient(
  body: unknown,
  authorization: string | undefined,
  deps: RegisterClientDeps,
  address: string,
  context?: AuditRequestContext,
): Promise<Record<string, unknown>> {
  const { registration } = deps.config;
  if (!registration.enabled) throw new RegistrationForbidden('dynamic client registration is disabled');
  if (registration.initialAccessToken !== undefined) {
    const presented = bearerToken(authorization);
    if (!presented || !safeEqual(presented, registration.initialAccessToken)) {
      throw new RegistrationForbidden('a valid initial access token is required', {
        // RFC 6750 §3.1: no error code in the challenge when no token was sent.
        'www-authenticate': presented ? 'Bearer realm="gatehouse", error="invalid_token"' : 'Bearer realm="gatehouse"',
      });
    }
  } else {
    await limitOpenRegistration(address, deps, context);
  }
  const metadata = validateClientMetadata(
    parseRegistrationRequest(body),
    deps.scopesSupported,
    deps.config.strictScopes,
    clientRulesOf(deps.config),
    { clientSecretJwt: deps.sealer !== undefined },
  );
  refuseUnallowedGrants(metadata.grantTypes, deps);
  refuseAdminScope(metadata.scope);
  // A re-registration of a client handed out again adds no client, so the registry's cap does not refuse it.
  const duplicate = await findDuplicate(metadata, deps, context);
  if (duplicate.kind === 'shared') return registrationResponse(duplicate.client, deps, undefined, undefined, false);
  if (
    duplicate.kind === 'none' &&
    registration.maxClients > 0 &&
    (await deps.storage.countClients()) >= registration.maxClients
  ) {
    deps.logger.warn(
      { maxClients: registration.maxClients },
      'registration refused: the store holds registration.maxClients clients',
    );
    throw new RegistryFull();
  }
  const now = deps.clock.now();
  const registrationAccessToken = randomToken();
  // A public client and a private_key_jwt client (it proves itself with its own key) get no secret.
  const secret = hasSecret(metadata.tokenEndpointAuthMethod) ? newClientSecret(deps.pepper) : undefined;
  // A replaced confidential client keeps its id (everything issued to it went with the old record).
  const clientId = duplicate.kind === 'replace' ? duplicate.client.clientId : randomId();
  const client: ClientRecord = {
    ...metadata,
    clientId,
    clientSecretHash: secret?.hash,
    clientSecretSealed: secret && sealedForSecretJwt(metadata.tokenEndpointAuthMethod, clientId, secret.secret, deps),
    registrationAccessTokenHash: hashToken(registrationAccessToken),
    source: 'dynamic',
    createdAt: now,
    updatedAt: now,
    clientSecretExpiresAt: secret && registration.clientSecretTtl > 0 ? now + registration.clientSecretTtl * 1000 : 0,
  };
  await deps.storage.saveClient(client);
  await remember(duplicate.fingerprint, clientId, deps);
  deps.logger.info({ clientId: client.clientId, clientName: client.clientName }, 'client registered');
  deps.audit.emit(
    {
      type: 'client.registered',
      clientId,
      source: 'dynamic',
      ...(client.clientName !== undefined && { clientName: client.clientName }),
      redirectUris: client.redirectUris,
      grantTypes: client.grantTypes,
      authMethod: client.tokenEndpointAuthMethod,
      ...(client.softwareId !== undefined && { softwareId: client.softwareId }),
    },
    context,
  );
  return registrationResponse(client, deps, secret?.secret, registrationAccessToken);
}

/** The registration (or RFC 7592 read) response; `managed` false: a shared client, which no registrant manages. */
function registrationResponse(
  client: ClientRecord,
  deps: Pick<Deps, 'config'>,
  secret: string | undefined,
  registrationAccessToken: string | undefined,
  managed = true,
): Record<string, unknown> {
  const out = clientMetadataResponse(client);
  if (secret) out.client_secret = secret;
  if (registrationAccessToken) out.registration_access_token = registrationAccessToken;
  if (managed)
    out.registration_client_uri = `${deps.config.issuer}${registerDeclaration.path}/${encodeURIComponent(client.clientId)}`;
  return out;
}

/** RFC 7592 §2: the registration access token must match the client; otherwise 401 (and no hint which failed). */
async function authorizeManagement(
  clientId: string,
  authorization: string | undefined,
  deps: ManagementDeps,
): Promise<ClientRecord> {
  const token = bearerToken(authorization);
  const fail = (challenge = 'Bearer realm="gatehouse", error="invalid_token"') =>
    new InvalidToken('the registration access token is invalid', { headers: { 'www-authenticate': challenge } });
  // RFC 6750 §3.1: a request with no token at all gets a challenge without an error code.
  if (!token) throw fail('Bearer realm="gatehouse"');
  const client = await deps.storage.getClient(clientId);
  if (!client?.registrationAccessTokenHash || !safeEqual(hashToken(token), client.registrationAccessTokenHash))
    throw fail();
  return client;
}

/** GET /register/:id (RFC 7592 §2.1). */
export async function readClientRegistration(
  clientId: string,
  authorization: string | undefined,
  deps: ReadRegistrationDeps,
): Promise<Record<string, unknown>> {
  const client = await authorizeManagement(clientId, authorization, deps);
  return registrationResponse(client, deps, undefined, undefined);
}

/** PUT /register/:id (RFC 7592 §2.2): replaces the metadata; a newly confidential client gets a new secret. */
export async function updateClientRegistration(
  clientId: string,
  body: unknown,
  authorization: string | undefined,
  deps: UpdateRegistrationDeps,
  context?: AuditRequestContext,
): Promise<Record<string, unknown>> {
  const client = await authorizeManagement(clientId, authorization, deps);
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    const b = body as Record<string, unknown>;
    if (b.client_id !== clientId) throw new InvalidClientMetadata('client_id in the body must match the client');
    // RFC 7592 §2.2: a client_secret in the body must be the current one; we hold only its hash, so refuse others.
    if (
      'registration_access_token' in b ||
      'registration_client_uri' in b ||
      'client_secret_expires_at' in b ||
      'client_id_issued_at' in b
    ) {
      throw new InvalidClientMetadata('server-managed fields must not be sent in an update');
    }
    if ('client_secret' in b) {
      const sent = b.client_secret;
      const current =
        typeof sent === 'string' &&
        client.clientSecretHash !== undefined &&
        (await verifyClientSecret(sent, client.clientSecretHash, deps.pepper));
      if (!current)
        throw new InvalidClientMetadata(
          'client_secret in the body must be the current secret (a client cannot choose its own)',
        );
    }
  }
  const metadata = validateClientMetadata(
    parseRegistrationRequest(body),
    deps.scopesSupported,
    deps.config.strictScopes,
    clientRulesOf(deps.config),
    { clientSecretJwt: deps.sealer !== undefined },
  );
  refuseUnallowedGrants(metadata.grantTypes, deps);
  refuseAdminScope(metadata.scope);
  const now = deps.clock.now();
  const method = metadata.tokenEndpointAuthMethod;
  let secret: { secret: string; hash: string } | undefined;
  let { clientSecretHash, clientSecretSealed } = client;
  if (!hasSecret(method)) clientSecretHash = clientSecretSealed = undefined;
  else if (!clientSecretHash || (method === 'client_secret_jwt' && !clientSecretSealed)) {
    // Turning confidential, or to client_secret_jwt: the current secret exists here only as a hash, which cannot
    // check an HS256 assertion, so the client gets a new one (returned once, like at registration).
    secret = newClientSecret(deps.pepper);
    clientSecretHash = secret.hash;
    clientSecretSealed = sealedForSecretJwt(method, clientId, secret.secret, deps);
  } else if (method !== 'client_secret_jwt') clientSecretSealed = undefined;
  const updated: ClientRecord = { ...client, ...metadata, clientSecretHash, clientSecretSealed, updatedAt: now };
  await deps.storage.saveClient(updated);
  deps.clients.forget?.(clientId);
  deps.audit.emit(
    { type: 'client.updated', clientId, source: 'dynamic', ...(secret && { secretRotated: true }) },
    context,
  );
  return registrationResponse(updated, deps, secret?.secret, undefined);
}

/** DELETE /register/:id (RFC 7592 §2.3): removes the client and everything issued to it. */
export async function deleteClientRegistration(
  clientId: string,
  authorization: string | undefined,
  deps: DeleteRegistrationDeps,
  context?: AuditRequestContext,
): Promise<void> {
  await authorizeManagement(clientId, authorization, deps);
  await deps.storage.deleteClient(clientId);
  deps.clients.forget?.(clientId);
  deps.logger.info({ clientId }, 'client deleted');
  deps.audit.emit({ type: 'client.deleted', clientId, source: 'dynamic' }, context);
}

/**
 * Counts the attempt against the address (IPv6: its /64, as for the login throttle) and against every address
 * together, in the store's shared counters (core/rate-limit.ts), before any work, so a burst of parallel requests
 * cannot overshoot; refuses over `registration.rateLimit.perIp` or `.total` with 429 and Retry-After. Each limit
 * that is on costs one store round trip.
 */
async function limitOpenRegistration(
  address: string,
  deps: Pick<Deps, 'config' | 'pepper' | 'clock' | 'logger' | 'audit'> & {
    storage: Pick<RateLimitStore, 'hitRateLimit'>;
  },
  context: AuditRequestContext | undefined,
): Promise<void> {
  const { perIp, total, windowSeconds } = deps.config.registration.rateLimit;
  const overIp = await hitLimit(deps, 'register', 'ip', addressBucket(address), perIp, windowSeconds);
  if (overIp !== undefined) {
    reportRateLimitHit(deps, 'register', 'ip', overIp, context);
    throw new RateLimited('too many client registrations from this address; retry later', overIp);
  }
  const overTotal = await hitLimit(deps, 'register', 'total', 'all', total, windowSeconds);
  if (overTotal !== undefined) {
    reportRateLimitHit(deps, 'register', 'total', overTotal, context);
    throw new RateLimited('too many client registrations at the moment; retry later', overTotal);
  }
}

/** The sealed copy a client_secret_jwt client's secret needs (validateClientMetadata allowed it only with a sealer). */
function sealedForSecretJwt(
  method: ClientRecord['tokenEndpointAuthMethod'],
  clientId: string,
  secret: string,
  deps: Pick<Deps, 'sealer'>,
): string | undefined {
  return method === 'client_secret_jwt' && deps.sealer ? sealClientSecret(deps.sealer, clientId, secret) : undefined;
}

/** Each grant's registration policy (e.g. open registration must not hand out machine tokens). */
function refuseUnallowedGrants(grantTypes: readonly string[], deps: Pick<Deps, 'config'>): void {
  const refused = refusedForRegistration(grantTypes, deps.config);
  if (refused.length > 0) {
    throw new InvalidClientMetadata(`${refused[0]} is not available to dynamically registered clients on this server`);
  }
}

/** The admin scope belongs to config-file clients only (http/routes/admin.ts checks that too). */
function refuseAdminScope(scope: readonly string[] | undefined): void {
  if (scope?.includes(ADMIN_SCOPE)) {
    throw new InvalidClientMetadata(`scope: ${ADMIN_SCOPE} is not available to dynamically registered clients`);
  }
}

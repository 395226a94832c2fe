/**
 * The JWT bearer grant (RFC 7523 §2.1, `urn:ietf:params:oauth:grant-type:jwt-bearer`) in its two profiles, told apart
 * by the assertion's JOSE header `typ`:
 * - `oauth-id-jag+jwt`: an Identity Assertion JWT Authorization Grant (draft-ietf-oauth-identity-assertion-authz-grant;
 *   MCP Enterprise-Managed Authorization, SEP-990) from a configured enterprise IdP (`enterpriseIdps`), redeemed by
 *   the authenticated client it names in its `client_id` claim;
 * - absent or `JWT`: a workload identity token (MCP SEP-1933: a Kubernetes service-account token, a SPIFFE JWT-SVID)
 *   from a configured workload issuer (`workloadIssuers`), with or without client authentication.
 * Either way the signature is checked against the issuer's JWKS, `aud` must name this server, the lifetime is bounded,
 * and the assertion is single use: its (iss, jti), or without a jti its hash, is claimed once in the store's replay
 * guard (atomic across replicas). The access token is for the resources and scopes the assertion, the issuer's
 * settings and the client allow; no refresh token: the next access token takes a new assertion.
 */
import { decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import {
  InvalidClient,
  InvalidGrant,
  InvalidRequest,
  InvalidScope,
  InvalidTarget,
  UnauthorizedClient,
} from '../model/errors.js';
import { hashToken } from '../core/crypto.js';
import { resolveResources } from '../core/resource.js';
import { intersectScopes, parseScope, resolveRequestedScopes } from '../core/scope.js';
import { ASSERTION_ALGORITHMS, lifetimeAcceptable, REPLAY_SKEW_MS } from '../clients/client-assertion.js';
import { isVerificationFailure } from '../clients/remote-jwks.js';
import { OutboundFetchError } from '../clients/ssrf.js';
import type { Config } from '../config/schema.js';
import type { Deps } from '../context.js';
import type { ReplayGuard } from '../model/ports.js';
import type { ClientRecord } from '../model/records.js';
import { audienceFor, tokenResponse } from './issue.js';
import { list, single, type DpopBinding, type GrantHandler, type TokenParams, type TokenResponse } from './types.js';

const JWT_BEARER_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** What discovery says about ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant §7). */
const ID_JAG_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag';

/** Verifying against the trusted issuers' keys, claiming the assertion once, minting. */
export type JwtBearerDeps = Pick<
  Deps,
  'config' | 'clock' | 'logger' | 'minter' | 'scopesSupported' | 'trustedIssuerKeys'
> & { storage: Pick<ReplayGuard, 'firstUse'> };

type KeySource = Pick<Config['enterpriseIdps'][number], 'issuer' | 'jwksUri' | 'maxLifetimeSeconds'>;

/** The assertion as sent: the JWT, which profile its `typ` names, and its (not yet verified) issuer. */
interface Assertion {
  jwt: string;
  profile: 'id-jag' | 'workload';
  issuer: string | undefined;
}

export const jwtBearerGrant: GrantHandler<JwtBearerDeps> = {
  grantType: JWT_BEARER_GRANT_TYPE,
  repeatableParams: ['resource'],
  // An ID-JAG is redeemed by the confidential client it names; a workload that has no client sends no credentials at
  // all (handleUnauthenticated), which is not a public client.
  allowsPublicClients: false,
  // Offered only when something to trust is configured.
  enabled: (config) => config.enterpriseIdps.length > 0 || config.workloadIssuers.length > 0,
  metadata: (config) =>
    config.enterpriseIdps.length > 0 ? { authorization_grant_profiles_supported: [ID_JAG_PROFILE] } : {},
  errorCodes: [
    'invalid_request',
    'invalid_client',
    'invalid_grant',
    'unauthorized_client',
    'invalid_scope',
    'invalid_target',
  ],
  async handle(params, client, deps, _context, dpop) {
    const assertion = readAssertion(params);
    if (assertion.profile === 'id-jag') return redeemIdJag(assertion, params, client, deps, dpop);
    return redeemWorkloadToken(assertion, params, { client }, deps, dpop);
  },
  async handleUnauthenticated(params, clientId, deps, dpop) {
    const assertion = readAssertion(params);
    if (assertion.profile === 'id-jag') {
      throw new InvalidClient('an ID-JAG is redeemed by the client it was issued to, which must authenticate');
    }
    return redeemWorkloadToken(assertion, params, { clientId }, deps, dpop);
  },
};

function readAssertion(params: TokenParams): Assertion {
  const jwt = single(params, 'assertion');
  if (!jwt) throw new InvalidRequest('assertion is required');
  let typ: unknown;
  let issuer: unknown;
  try {
    typ = decodeProtectedHeader(jwt).typ;
    issuer = decodeJwt(jwt).iss;
  } catch {
    throw new InvalidGrant('the assertion is not a signed JWT');
  }
  // RFC 7515 §4.1.9: compared case-insensitively, and `application/` may be left out.
  const media = typeof typ === 'string' ? typ.toLowerCase().replace(/^application\//, '') : typ;
  let profile: Assertion['profile'];
  if (media === 'oauth-id-jag+jwt') profile = 'id-jag';
  else if (media === undefined || media === 'jwt') profile = 'workload';
  else {
    // Another typed JWT (an access token, a logout token, ...) is never an authorization grant here.
    throw new InvalidGrant('the assertion typ must be oauth-id-jag+jwt (an ID-JAG) or JWT (a workload token)');
  }
  return { jwt, profile, issuer: typeof issuer === 'string' ? issuer : undefined };
}

/** Checks signature, issuer, audience and lifetime against the issuer's settings; returns the claims. */
async function verifyFrom(
  jwt: string,
  source: KeySource,
  audience: string,
  requiredClaims: string[],
  deps: JwtBearerDeps,
): Promise<JWTPayload> {
  const keys = deps.trustedIssuerKeys.get(source.jwksUri);
  if (!keys) throw new Error(`no key set for ${source.jwksUri}`);
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(jwt, keys, {
      issuer: source.issuer,
      audience,
      currentDate: new Date(deps.clock.now()),
      requiredClaims: ['exp', ...requiredClaims],
      algorithms: ASSERTION_ALGORITHMS,
    }));
  } catch (err) {
    if (err instanceof OutboundFetchError) {
      deps.logger.warn(
        { issuer: source.issuer, jwksUri: source.jwksUri, reason: err.message },
        'jwks_uri fetch failed',
      );
      throw new InvalidGrant("the issuer's signing keys could not be fetched");
    }
    if (isVerificationFailure(err)) throw new InvalidGrant(`the assertion is invalid: ${(err as Error).message}`);
    throw err;
  }
  if (!lifetimeAcceptable(payload, Math.floor(deps.clock.now() / 1000), source.maxLifetimeSeconds)) {
    throw new InvalidGrant(
      `the assertion must expire within ${source.maxLifetimeSeconds} s of its iat and of now, and not be issued in the future`,
    );
  }
  return payload;
}

/** Claims the assertion once, across replicas: its (iss, jti), or without a jti the assertion itself, until exp. */
async function claimOnce(assertion: Assertion, payload: JWTPayload, deps: JwtBearerDeps): Promise<void> {
  if (payload.jti !== undefined && typeof payload.jti !== 'string') throw new InvalidGrant('jti must be a string');
  // Hashed: the store holds no issuer-chosen string; JSON keeps (iss, jti) pairs unambiguous.
  const key = `jwt-bearer:${hashToken(payload.jti === undefined ? assertion.jwt : JSON.stringify([payload.iss, payload.jti]))}`;
  if (!(await deps.storage.firstUse(key, payload.exp! * 1000 + REPLAY_SKEW_MS))) {
    throw new InvalidGrant('the assertion was already used');
  }
}

/** A claim that must be a string, or a list of strings (a single string counts as a list of one). */
function strings(payload: JWTPayload, claim: string): string[] {
  const value = payload[claim];
  if (value === undefined) return [];
  const values = Array.isArray(value) ? value : [value];
  if (!values.every((v): v is string => typeof v === 'string')) throw new InvalidGrant(`${claim} must be a string`);
  return values;
}

/** Scopes that never go into these tokens: no user session to sign in (openid), no refresh token (offline_access). */
const withoutSessionScopes = (scope: string[]) => scope.filter((s) => s !== 'openid' && s !== 'offline_access');

async function redeemIdJag(
  assertion: Assertion,
  params: TokenParams,
  client: ClientRecord,
  deps: JwtBearerDeps,
  dpop: DpopBinding | undefined,
): Promise<TokenResponse> {
  const idp = deps.config.enterpriseIdps.find((i) => i.issuer === assertion.issuer);
  if (!idp) throw new InvalidGrant('the ID-JAG issuer is not a trusted enterprise IdP');
  if (!idp.allowedClients.includes(client.clientId)) {
    throw new UnauthorizedClient("this client may not redeem this IdP's ID-JAGs");
  }
  const payload = await verifyFrom(assertion.jwt, idp, deps.config.issuer, ['iat', 'jti', 'client_id'], deps);
  if (Array.isArray(payload.aud) && payload.aud.length !== 1) {
    throw new InvalidGrant("the ID-JAG's aud must be this server's issuer identifier alone");
  }
  if (payload.client_id !== client.clientId) throw new InvalidGrant('the ID-JAG was issued to another client');
  const subject = payload[idp.subjectClaim];
  if (typeof subject !== 'string' || subject === '') {
    throw new InvalidGrant(`the ID-JAG has no ${idp.subjectClaim} claim to name its subject`);
  }

  // The resources the IdP granted must be ones this server serves; a request may narrow them, never add one.
  const granted = resolveResources(strings(payload, 'resource'), deps.config.resources);
  const requested = resolveResources(list(params, 'resource'), deps.config.resources);
  const outside = requested.find((r) => granted.length > 0 && !granted.includes(r));
  if (outside !== undefined) throw new InvalidTarget(`the ID-JAG does not grant the resource ${outside}`);
  const resources = requested.length > 0 ? requested : granted;

  // The IdP's scopes, or the requested part of them, narrowed to what this client may have here. The registered
  // allow-list is binding (no consent happens on this server); without one, any scope this server knows.
  let jagScope: string[];
  try {
    jagScope = parseScope(strings(payload, 'scope').join(' '));
  } catch {
    throw new InvalidGrant('the ID-JAG scope is malformed');
  }
  const requestedScope = parseScope(single(params, 'scope'));
  const notGranted = requestedScope.filter((s) => !jagScope.includes(s));
  if (notGranted.length > 0) throw new InvalidScope(`the ID-JAG does not grant the scope ${notGranted.join(' ')}`);
  const allowed = intersectScopes(client.scope ?? deps.scopesSupported, deps.scopesSupported);
  const scope = withoutSessionScopes(intersectScopes(requestedScope.length > 0 ? requestedScope : jagScope, allowed));

  await claimOnce(assertion, payload, deps);
  const access = await deps.minter.accessToken({
    sub: idp.subjectPrefix + subject,
    clientId: client.clientId,
    scope,
    audience: audienceFor(resources, client.clientId, deps),
    authTime: typeof payload.auth_time === 'number' ? payload.auth_time * 1000 : undefined,
    ...(dpop && { jkt: dpop.jkt }),
  });
  return tokenResponse(access, scope);
}

async function redeemWorkloadToken(
  assertion: Assertion,
  params: TokenParams,
  caller: { client?: ClientRecord; clientId?: string },
  deps: JwtBearerDeps,
  dpop: DpopBinding | undefined,
): Promise<TokenResponse> {
  const issuer = deps.config.workloadIssuers.find((w) => w.issuer === assertion.issuer);
  if (!issuer) throw new InvalidGrant('the assertion issuer is not a trusted workload issuer');
  const { client } = caller;
  if (client && issuer.clientId !== undefined && issuer.clientId !== client.clientId) {
    throw new UnauthorizedClient("this client may not redeem this issuer's workload tokens");
  }
  const payload = await verifyFrom(assertion.jwt, issuer, issuer.audience ?? deps.config.issuer, ['sub'], deps);
  const workload = payload.sub;
  if (typeof workload !== 'string' || workload === '') throw new InvalidGrant('the workload token has no sub');
  if (issuer.subjectPattern !== undefined && !new RegExp(`^(?:${issuer.subjectPattern})$`, 'u').test(workload)) {
    throw new InvalidGrant('the workload is not one this issuer may speak for here (subjectPattern)');
  }
  const subject = issuer.subjectPrefix + workload;
  const clientId = client?.clientId ?? issuer.clientId ?? subject;
  if (!client && caller.clientId !== undefined && caller.clientId !== clientId) {
    throw new InvalidClient("client_id does not name this workload's client");
  }

  // As client_credentials: an explicit allow-list only (the issuer's, and an authenticating client's too), and a
  // scope outside it is refused, never narrowed.
  const allowList = client ? intersectScopes(issuer.scopes, client.scope ?? []) : issuer.scopes;
  const scope = withoutSessionScopes(
    resolveRequestedScopes(parseScope(single(params, 'scope')), allowList, deps.scopesSupported, true),
  );
  const resources = resolveResources(list(params, 'resource'), deps.config.resources);

  await claimOnce(assertion, payload, deps);
  const access = await deps.minter.accessToken({
    sub: subject,
    clientId,
    scope,
    audience: audienceFor(resources, clientId, deps),
    ...(dpop && { jkt: dpop.jkt }),
  });
  return tokenResponse(access, scope);
}

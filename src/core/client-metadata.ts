/**
 * Client metadata rules for dynamic registration (RFC 7591 §2, RFC 7592) and static clients: redirect URIs,
 * grant/response type consistency, auth method, application_type (OIDC Registration §2). Pure: returns the
 * normalised metadata or throws InvalidClientMetadata / InvalidRedirectUri.
 */
import { z } from 'zod';
import { InvalidClientMetadata, InvalidRedirectUri } from '../model/errors.js';
import { checkRedirectUriForRegistration, describeRedirectUriProblem, isLoopback } from './redirect-uri.js';
import { parseScope } from './scope.js';
import type { ClientRecord, TokenEndpointAuthMethod } from '../model/records.js';

const httpsUrl = z
  .string()
  .url()
  .refine((u) => u.startsWith('https://'), 'must be an https URL');

/** The RFC 7591 registration request as it arrives on the wire (unknown fields are ignored, RFC 7591 §2). */
export const registrationRequestSchema = z.object({
  redirect_uris: z.array(z.string().max(2000)).max(50).optional(),
  /** OpenID Connect RP-Initiated Logout 1.0 §3.1: where the end_session endpoint may send the browser back. */
  post_logout_redirect_uris: z.array(z.string().max(2000)).max(50).optional(),
  token_endpoint_auth_method: z.string().optional(),
  grant_types: z.array(z.string()).max(10).optional(),
  response_types: z.array(z.string()).max(10).optional(),
  client_name: z.string().max(200).optional(),
  client_uri: httpsUrl.optional(),
  logo_uri: httpsUrl.optional(),
  scope: z.string().max(2000).optional(),
  contacts: z.array(z.string().max(320)).max(20).optional(),
  tos_uri: httpsUrl.optional(),
  policy_uri: httpsUrl.optional(),
  software_id: z.string().max(200).optional(),
  software_version: z.string().max(100).optional(),
  application_type: z.string().optional(),
  /** RFC 7591 §2: the client's public keys, inline or by reference (private_key_jwt, RFC 7523 §2.2). */
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1).max(10) }).optional(),
  jwks_uri: httpsUrl.optional(),
  /** RFC 9126 §6: the client's authorization requests must be pushed (POST /par) first. */
  require_pushed_authorization_requests: z.boolean().optional(),
  /** RFC 9449 §5.2: the client always uses DPoP at the token endpoint. */
  dpop_bound_access_tokens: z.boolean().optional(),
});
export type RegistrationRequest = z.infer<typeof registrationRequestSchema>;

/** The metadata part of a client record (what registration decides). */
export type ClientMetadata = Pick<
  ClientRecord,
  | 'jwks'
  | 'jwksUri'
  | 'redirectUris'
  | 'postLogoutRedirectUris'
  | 'grantTypes'
  | 'responseTypes'
  | 'scope'
  | 'tokenEndpointAuthMethod'
  | 'applicationType'
  | 'clientName'
  | 'clientUri'
  | 'logoUri'
  | 'contacts'
  | 'tosUri'
  | 'policyUri'
  | 'softwareId'
  | 'softwareVersion'
  | 'requirePushedAuthorizationRequests'
  | 'dpopBoundAccessTokens'
>;

/**
 * What a grant type asks of the clients that list it. Each grant module declares its own (src/grants); the caller
 * passes the server's grants in, so this module knows no grant type by name.
 */
export interface GrantClientRules {
  grantType: string;
  /**
   * Response types (RFC 7591 §2.1) that go with this grant: a client listing the grant must register one of them
   * (the default when response_types is absent), and a response type needs a grant that declares it.
   */
  responseTypes?: readonly string[];
  /** Grant types a client listing this one must list at least one of (those the server offers). */
  requiresGrantTypes?: readonly string[];
  /** False: public clients (token_endpoint_auth_method none) cannot list it (also enforced at the token endpoint). */
  allowsPublicClients: boolean;
  /** Clients listing it must register at least one redirect URI. */
  requiresRedirectUris?: boolean;
  /** Listed when a registration request omits grant_types (RFC 7591 §2: the default is authorization_code). */
  registrationDefault?: boolean;
  /** False: Client ID Metadata Document clients cannot list it. */
  metadataDocumentClients?: boolean;
  /** Any further rule, run after the common ones; throws InvalidClientMetadata / InvalidRedirectUri. */
  checkClient?(metadata: ClientMetadata): void;
}

const AUTH_METHODS = new Set<TokenEndpointAuthMethod>([
  'none',
  'client_secret_basic',
  'client_secret_post',
  'private_key_jwt',
]);

/** JWK members that only a private or symmetric key has: a client's registered keys must be public. */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** What the server can offer besides the plain methods (its configuration decides; this module reads no config). */
export interface ClientMetadataOptions {
  /** client_secret_jwt may be registered: the server can keep the secret sealed (it has an encryptionKey). */
  clientSecretJwt?: boolean;
}

const UNPAIRED_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * The first metadata field holding a string with an unpaired UTF-16 surrogate (JSON allows the escape, RFC 8259 §8.2
 * leaves its meaning undefined, and PostgreSQL's jsonb refuses it): refused on every store alike.
 */
function unpairedSurrogateField(body: Record<string, unknown>): string | undefined {
  for (const name of Object.keys(registrationRequestSchema.shape)) {
    const value = body[name];
    const strings = Array.isArray(value) ? value : [value];
    if (strings.some((v) => typeof v === 'string' && UNPAIRED_SURROGATE.test(v))) return name;
  }
  return undefined;
}

/** Parses unknown JSON into a registration request, with clear invalid_client_metadata messages. */
export function parseRegistrationRequest(body: unknown): RegistrationRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidClientMetadata('the registration request must be a JSON object');
  }
  const unpaired = unpairedSurrogateField(body as Record<string, unknown>);
  if (unpaired === 'redirect_uris') throw new InvalidRedirectUri('redirect_uris: must be well-formed Unicode');
  if (unpaired) throw new InvalidClientMetadata(`${unpaired}: must be well-formed Unicode`);
  const result = registrationRequestSchema.safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    if (issue.path[0] === 'redirect_uris') throw new InvalidRedirectUri(`redirect_uris: ${issue.message}`);
    throw new InvalidClientMetadata(`${issue.path.join('.') || 'body'}: ${issue.message}`);
  }
  return result.data;
}

/**
 * Validates and normalises registration metadata.
 * `supportedScopes` narrows the client's requested scope allow-list: an unknown scope is refused when `strictScopes`,
 * else dropped (possibly leaving an empty allow-list, which grants nothing). No `scope` = no allow-list.
 * `grants` are the server's grant types with their rules (src/grants `clientRulesOf`); no other grant type is accepted.
 */
export function validateClientMetadata(
  req: RegistrationRequest,
  supportedScopes: readonly string[],
  strictScopes: boolean,
  grants: readonly GrantClientRules[],
  options: ClientMetadataOptions = {},
): ClientMetadata {
  const grantTypes = req.grant_types ?? grants.filter((g) => g.registrationDefault).map((g) => g.grantType);
  const known = new Set(grants.map((g) => g.grantType));
  for (const g of grantTypes) {
    if (!known.has(g)) throw new InvalidClientMetadata(`grant_types: unsupported grant type ${JSON.stringify(g)}`);
  }
  // In the server's order, so the first problem reported does not depend on the order the client listed them in.
  const listed = grants.filter((g) => grantTypes.includes(g.grantType));
  // RFC 7591 §2.1: response_types and grant_types must be consistent.
  const supportedResponseTypes = [...new Set(grants.flatMap((g) => g.responseTypes ?? []))];
  const responseTypes = req.response_types ?? [...new Set(listed.flatMap((g) => g.responseTypes ?? []))];
  for (const r of responseTypes) {
    if (!supportedResponseTypes.includes(r)) {
      const names = supportedResponseTypes.map((t) => JSON.stringify(t)).join(', ');
      throw new InvalidClientMetadata(
        `response_types: only ${names} ${supportedResponseTypes.length === 1 ? 'is' : 'are'} supported, got ${JSON.stringify(r)}`,
      );
    }
  }
  for (const g of listed) {
    if (g.responseTypes && g.responseTypes.length > 0 && !g.responseTypes.some((r) => responseTypes.includes(r))) {
      throw new InvalidClientMetadata(
        `grant_types includes ${g.grantType}, so response_types must include ${g.responseTypes.join(' or ')}`,
      );
    }
  }
  for (const r of responseTypes) {
    if (!listed.some((g) => g.responseTypes?.includes(r))) {
      const owners = grants.filter((g) => g.responseTypes?.includes(r)).map((g) => g.grantType);
      throw new InvalidClientMetadata(
        `response_types ${JSON.stringify(r)} requires the ${owners.join(' or ')} grant type`,
      );
    }
  }
  for (const g of listed) {
    // At least one of them, among the grants offered (refresh tokens come from the code or the device grant).
    const needed = (g.requiresGrantTypes ?? []).filter((other) => known.has(other));
    if (needed.length > 0 && !needed.some((other) => grantTypes.includes(other)))
      throw new InvalidClientMetadata(`grant_types: ${g.grantType} requires ${needed.join(' or ')}`);
  }

  const method = (req.token_endpoint_auth_method ?? 'client_secret_basic') as TokenEndpointAuthMethod;
  if (!AUTH_METHODS.has(method) && !(method === 'client_secret_jwt' && options.clientSecretJwt)) {
    throw new InvalidClientMetadata(`token_endpoint_auth_method: unsupported method ${JSON.stringify(method)}`);
  }
  const keys = checkClientKeys(req, method);
  for (const g of listed) {
    if (!g.allowsPublicClients && method === 'none') {
      throw new InvalidClientMetadata(`${g.grantType} requires a confidential client (a client secret)`);
    }
  }

  const redirectUris = req.redirect_uris ?? [];
  for (const g of listed) {
    if (g.requiresRedirectUris && redirectUris.length === 0) {
      throw new InvalidRedirectUri(`redirect_uris is required for the ${g.grantType} grant`);
    }
  }
  if (req.application_type !== undefined && req.application_type !== 'web' && req.application_type !== 'native') {
    throw new InvalidClientMetadata('application_type must be "web" or "native"');
  }
  const applicationType = req.application_type ?? inferApplicationType(redirectUris);
  for (const uri of redirectUris) {
    const problem = checkRedirectUriForRegistration(uri, applicationType);
    if (problem) throw new InvalidRedirectUri(describeRedirectUriProblem(problem, uri));
  }

  // The same rules as redirect URIs (exact match later; https, loopback or a native app's private-use scheme).
  const postLogoutRedirectUris = req.post_logout_redirect_uris;
  for (const uri of postLogoutRedirectUris ?? []) {
    const problem = checkRedirectUriForRegistration(uri, applicationType);
    if (problem) {
      throw new InvalidClientMetadata(`post_logout_redirect_uris: ${describeRedirectUriProblem(problem, uri)}`);
    }
  }

  // Absent stays absent (no allow-list); a scope that narrows to nothing is stored as nothing, never as "everything".
  let scope: string[] | undefined;
  if (req.scope !== undefined) {
    let requested: string[];
    try {
      requested = parseScope(req.scope);
    } catch (err) {
      throw new InvalidClientMetadata(`scope: ${(err as { description?: string }).description ?? 'malformed'}`);
    }
    const known = new Set(supportedScopes);
    const unknown = requested.filter((s) => !known.has(s));
    if (unknown.length > 0 && strictScopes) {
      throw new InvalidClientMetadata(
        `scope: not known to this server: ${unknown.join(' ')} (the server's "scopes" setting declares the scopes it knows)`,
      );
    }
    scope = requested.filter((s) => known.has(s));
  }

  const metadata: ClientMetadata = {
    redirectUris: [...new Set(redirectUris)],
    postLogoutRedirectUris: postLogoutRedirectUris && [...new Set(postLogoutRedirectUris)],
    ...keys,
    grantTypes: [...new Set(grantTypes)],
    responseTypes: [...new Set(responseTypes)],
    scope,
    tokenEndpointAuthMethod: method,
    applicationType,
    clientName: req.client_name,
    clientUri: req.client_uri,
    logoUri: req.logo_uri,
    contacts: req.contacts,
    tosUri: req.tos_uri,
    policyUri: req.policy_uri,
    softwareId: req.software_id,
    softwareVersion: req.software_version,
    requirePushedAuthorizationRequests: req.require_pushed_authorization_requests,
    dpopBoundAccessTokens: req.dpop_bound_access_tokens,
  };
  for (const g of listed) g.checkClient?.(metadata);
  return metadata;
}

/**
 * RFC 7591 §2 `jwks` / `jwks_uri`: never both; private_key_jwt needs one of them (RFC 7523 §2.2: the keys the
 * client's assertions are checked against); only public asymmetric keys are accepted, so a registration can never
 * make the server hold a client's private or shared key. Returns the record fields.
 */
function checkClientKeys(
  req: RegistrationRequest,
  method: TokenEndpointAuthMethod,
): Pick<ClientRecord, 'jwks' | 'jwksUri'> {
  if (req.jwks && req.jwks_uri) throw new InvalidClientMetadata('jwks and jwks_uri must not both be present');
  if (method === 'private_key_jwt' && !req.jwks && !req.jwks_uri) {
    throw new InvalidClientMetadata('private_key_jwt requires jwks or jwks_uri');
  }
  for (const [i, key] of (req.jwks?.keys ?? []).entries()) {
    if (key.kty !== 'EC' && key.kty !== 'RSA' && key.kty !== 'OKP') {
      throw new InvalidClientMetadata(`jwks.keys[${i}]: kty must be EC, RSA or OKP`);
    }
    const secret = PRIVATE_JWK_MEMBERS.find((member) => member in key);
    if (secret)
      throw new InvalidClientMetadata(`jwks.keys[${i}]: a private key (member "${secret}"): register the public key`);
  }
  return { ...(req.jwks && { jwks: req.jwks }), ...(req.jwks_uri && { jwksUri: req.jwks_uri }) };
}

/** Clients that omit application_type but use loopback or private-use redirects are native apps (RFC 8252). */
function inferApplicationType(redirectUris: readonly string[]): 'web' | 'native' {
  const native = redirectUris.some((uri) => {
    try {
      const url = new URL(uri);
      return (url.protocol === 'http:' && isLoopback(url)) || (url.protocol !== 'http:' && url.protocol !== 'https:');
    } catch {
      return false;
    }
  });
  return native ? 'native' : 'web';
}

/** The RFC 7591 §3.2.1 view of a client (no secrets). */
export function clientMetadataResponse(client: ClientRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {
    client_id: client.clientId,
    client_id_issued_at: Math.floor(client.createdAt / 1000),
    redirect_uris: client.redirectUris,
    grant_types: client.grantTypes,
    response_types: client.responseTypes,
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    application_type: client.applicationType,
  };
  if (client.clientSecretHash) out.client_secret_expires_at = Math.floor(client.clientSecretExpiresAt / 1000);
  // An empty allow-list is returned as "" so the client sees it was narrowed to nothing (RFC 7591 §3.2.1).
  if (client.scope !== undefined) out.scope = client.scope.join(' ');
  const optional: [string, unknown][] = [
    ['post_logout_redirect_uris', client.postLogoutRedirectUris],
    ['client_name', client.clientName],
    ['client_uri', client.clientUri],
    ['logo_uri', client.logoUri],
    ['contacts', client.contacts],
    ['tos_uri', client.tosUri],
    ['policy_uri', client.policyUri],
    ['software_id', client.softwareId],
    ['software_version', client.softwareVersion],
    ['jwks', client.jwks],
    ['jwks_uri', client.jwksUri],
    ['require_pushed_authorization_requests', client.requirePushedAuthorizationRequests],
    ['dpop_bound_access_tokens', client.dpopBoundAccessTokens],
  ];
  for (const [k, v] of optional) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * The records Gatehouse keeps: plain data, no behaviour, below every other layer (docs/architecture.md). The store
 * ports that hold them are in ./ports.ts; the conventions every backend follows are described there.
 */
/** How a client authenticates at the token endpoint (RFC 7591 §2). */
export type TokenEndpointAuthMethod =
  'none' | 'client_secret_basic' | 'client_secret_post' | 'client_secret_jwt' | 'private_key_jwt';

/** Where a client came from (`admin`: created through the admin API or the CLI). */
export type ClientSource = 'dynamic' | 'static' | 'metadata_document' | 'admin';

/** A registered client (RFC 7591 metadata in camelCase, plus server-side fields). */
export interface ClientRecord {
  clientId: string;
  /** `hmac:<b64u>` (server-generated 256-bit secret) or `scrypt:...` (admin-chosen secret); absent for public clients. */
  clientSecretHash?: string;
  /**
   * client_secret_jwt clients only: the secret itself, sealed with `encryptionKey` (core/client-auth
   * sealClientSecret), because an HS256 assertion is checked with the secret and a hash cannot do that.
   */
  clientSecretSealed?: string;
  /** SHA-256 of the RFC 7592 registration access token. */
  registrationAccessTokenHash?: string;
  redirectUris: string[];
  /** Where RP-Initiated Logout may return the browser (exact match); absent: nowhere. */
  postLogoutRedirectUris?: string[];
  grantTypes: string[];
  responseTypes: string[];
  /**
   * The client's scope allow-list. Absent: none was set (user grants may ask for any scope the server supports;
   * client_credentials gets none). `[]`: the client may have no scope. Stores keep the two apart.
   */
  scope?: string[];
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  applicationType: 'web' | 'native';
  clientName?: string;
  clientUri?: string;
  logoUri?: string;
  contacts?: string[];
  tosUri?: string;
  policyUri?: string;
  softwareId?: string;
  softwareVersion?: string;
  /** Public keys for private_key_jwt (CIMD clients). */
  jwks?: { keys: Record<string, unknown>[] };
  jwksUri?: string;
  /** RFC 9126 §6: /authorize takes only the client's pushed requests (a request_uri from POST /par). Absent: false. */
  requirePushedAuthorizationRequests?: boolean;
  /** RFC 9449 §5.2 `dpop_bound_access_tokens`: every token request of this client must carry a DPoP proof. */
  dpopBoundAccessTokens?: boolean;
  source: ClientSource;
  /** Epoch ms. */
  createdAt: number;
  updatedAt: number;
  /** 0 = the secret never expires (RFC 7591 §3.2.1 client_secret_expires_at). */
  clientSecretExpiresAt: number;
}

/** A local user. `id` is the stable `sub`. */
export interface UserRecord {
  id: string;
  username: string;
  /**
   * scrypt hash in PHC-like form (core/password.ts); '' for a user made by an upstream sign-in, whom no password
   * signs in (authorization/upstream-sign-in.ts).
   */
  passwordHash: string;
  email?: string;
  emailVerified?: boolean;
  name?: string;
  /**
   * Set by an administrator (admin API, `gatehouse user disable`): no sign-in, no session and no code exchange for
   * them; disabling also revokes their grants and ends their sessions. Absent: false.
   */
  disabled?: boolean;
  /** The user must sign in with a second factor (set by an administrator; config `mfa.required` for everyone). */
  mfaRequired?: boolean;
  /** Their authenticator app (RFC 6238), if enrolled. */
  totp?: TotpFactor;
  /** Their registered passkeys (WebAuthn credentials); absent or empty: none. */
  passkeys?: PasskeyCredential[];
  /** Hashes of their unused recovery codes (a backup of the factors above, shown once when made). */
  recoveryCodes?: RecoveryCodes;
  /** The deployment's first administrator, made on the setup page (authorization/setup.ts); absent: not one. */
  admin?: boolean;
  createdAt: number;
  updatedAt: number;
}

/**
 * A one-time setup link (authorization/setup.ts): printed at the first start of a deployment without users, it lets
 * the first administrator choose a username and password. Stored by the SHA-256 of its token, taken once.
 */
export interface SetupLinkRecord {
  /** hashToken(token): the token itself is only in the printed URL. */
  id: string;
  createdAt: number;
  expiresAt: number;
}

/** A TOTP authenticator (RFC 6238, SHA-1, 6 digits, 30 s: what every app assumes). */
export interface TotpFactor {
  /** The base32 secret, or its envelope `sealed:v1:...` when written with `encryptionKey` (core/sealing.ts). */
  secret: string;
  createdAt: number;
}

/** A WebAuthn credential (a passkey) registered for the user, as @simplewebauthn/server verified it. */
export interface PasskeyCredential {
  /** Credential ID, base64url. */
  id: string;
  /** COSE public key, base64url. */
  publicKey: string;
  /** Signature counter at the last use (0 for authenticators that keep none). */
  counter: number;
  /** What the authenticator said it speaks (usb, nfc, ble, internal, hybrid), as a hint for the browser. */
  transports?: string[];
  /** `multiDevice`: a synced passkey (software-held key, amr `swk`); `singleDevice`: bound to hardware (`hwk`). */
  deviceType: 'singleDevice' | 'multiDevice';
  backedUp: boolean;
  /** A label the user recognises it by. */
  name: string;
  createdAt: number;
  lastUsedAt?: number;
}

/** One set of recovery codes: keyed hashes of the unused ones (authorization/recovery-codes.ts). */
export interface RecoveryCodes {
  /** Random id of the set: part of every hash, so a regenerated set shares nothing with the one before. */
  batch: string;
  hashes: string[];
  createdAt: number;
}

/** A signing key pair as JWKs. `status` active keys sign; retired keys are only published until `expiresAt`. */
export interface SigningKeyRecord {
  kid: string;
  alg: 'ES256' | 'RS256' | 'EdDSA';
  /** The private JWK, or `{ sealed: <envelope> }` when written with `encryptionKey` (core/keys.ts sealSigningKey). */
  privateJwk: Record<string, unknown>;
  publicJwk: Record<string, unknown>;
  createdAt: number;
  status: 'active' | 'retired';
  /** When a retired key leaves the JWKS (after every token it signed has expired). Undefined for active keys. */
  expiresAt?: number;
}

/** A pending authorization request (the "interaction"), finished by any replica. */
export interface InteractionRecord {
  id: string;
  clientId: string;
  /**
   * The grant id the code will carry, fixed at /authorize: the flow trace reference of this authorization (shown on
   * error pages, named by its audit events). Absent on interactions stored before it existed.
   */
  grantId?: string;
  /** The redirect URI as the client sent it (may differ from the registered one by a loopback port). */
  redirectUri: string;
  /** The request carried redirect_uri (else the single registered one was used): the token request must repeat it. */
  redirectUriSent: boolean;
  state?: string;
  nonce?: string;
  scope: string[];
  resource: string[];
  codeChallenge: string;
  codeChallengeMethod: 'S256';
  prompt: string[];
  maxAge?: number;
  responseMode: 'query';
  /**
   * Hash of the nonce cookie of the browser that started the request (never the nonce itself): every interaction
   * step must come from that browser (RFC 9700 §4.7). Empty on records from before it existed, which match nothing.
   */
  browserBinding: string;
  /** Set once the user has signed in for this interaction. */
  userId?: string;
  authTime?: number;
  /** How they signed in (RFC 8176 values, core/authentication.ts); absent on records from before: `pwd`. */
  amr?: string[];
  /** Set when the sign-in came back from an upstream: its tokens, sealed for the code's grant. */
  upstream?: InteractionUpstream;
  /** RFC 9449 §10 `dpop_jkt`: the code is bound to that key. */
  dpopJkt?: string;
  /**
   * Set when the interaction approves a device (RFC 8628 device authorization grant): the hash of its device code.
   * Such an interaction has no redirect: it ends by recording the user's decision for the device to poll for.
   */
  deviceCodeHash?: string;
  createdAt: number;
  expiresAt: number;
}

/**
 * A pending device authorization (RFC 8628 §3.2), kept under the SHA-256 of its device code until the device redeems
 * the user's approval or it expires. The record lives one lifetime longer than the code (`codeExpiresAt`), so a late
 * poll is told `expired_token` rather than `invalid_grant`.
 */
export interface DeviceAuthorizationRecord {
  /** SHA-256 of the device code (base64url). */
  id: string;
  clientId: string;
  /** The keyed hash of its user code (the id of its `device_user_code` record). */
  userCodeHash: string;
  /** The scopes and resources requested, checked as /authorize checks them. */
  scope: string[];
  resource: string[];
  /** The flow trace reference, and the grant id of the tokens it ends in. */
  grantId: string;
  /** The polling interval first given to the device, seconds (each slow_down adds 5, counted in the store). */
  interval: number;
  createdAt: number;
  /** When the device code stops working (its expires_in). */
  codeExpiresAt: number;
  expiresAt: number;
}

/** The user code of a pending device authorization, under its keyed hash: taken once, when a user enters it. */
export interface DeviceUserCodeRecord {
  /** Keyed hash of the normalised user code (the pepper: a store reader cannot enumerate 20^8 codes). */
  id: string;
  deviceCodeHash: string;
  clientId: string;
  expiresAt: number;
}

/**
 * What the user decided for a device authorization, under the SHA-256 of its device code: the device's poll takes an
 * approval once (of racing replicas one gets it); a denial stays until it expires.
 */
export interface DeviceDecisionRecord {
  /** SHA-256 of the device code. */
  id: string;
  clientId: string;
  approved: boolean;
  userId: string;
  authTime: number;
  amr?: string[];
  scope: string[];
  resource: string[];
  grantId: string;
  createdAt: number;
  expiresAt: number;
}

/**
 * A pushed authorization request (RFC 9126), kept until its request_uri is used once or expires. Its parameters were
 * checked when it was pushed; /authorize runs them through the same checks again in place of its own query.
 */
export interface PushedRequestRecord {
  /** The random part of its request_uri (`urn:ietf:params:oauth:request_uri:<id>`); stored under its hash. */
  id: string;
  /** The client that pushed it: only that client_id may use it (RFC 9126 §2.2). */
  clientId: string;
  /** The authorization request's parameters as pushed (every value), without client_id and client authentication. */
  params: Record<string, string[]>;
  createdAt: number;
  expiresAt: number;
}

/** A browser login session (the cookie carries its id). */
export interface SessionRecord {
  id: string;
  userId: string;
  authTime: number;
  /** How the user signed in (RFC 8176 values); absent on sessions from before second factors: `pwd`. */
  amr?: string[];
  createdAt: number;
  expiresAt: number;
}

/**
 * A sign-in whose password was right and which waits for the second factor (or for the enrolment of one, when the
 * user must have one). Bound to the browser like an interaction; kept under a hash of what it belongs to (an
 * interaction, or the account page of one browser), never under a bearer secret.
 */
export interface PendingSignInRecord {
  id: string;
  userId: string;
  /** As InteractionRecord.browserBinding: only that browser may finish it. */
  browserBinding: string;
  createdAt: number;
  expiresAt: number;
}

/**
 * A TOTP secret shown to the user and not yet confirmed with a code: enrolment finishes when they type one. Kept
 * under a hash of the sign-in or session it belongs to; the secret sealed when `encryptionKey` is set.
 */
export interface TotpEnrolmentRecord {
  id: string;
  userId: string;
  secret: string;
  expiresAt: number;
}

/**
 * A WebAuthn challenge handed to a browser: taken (once) when the browser answers, so a challenge is never accepted
 * twice. Kept under the hash of the challenge.
 */
export interface WebAuthnChallengeRecord {
  id: string;
  userId: string;
  purpose: 'register' | 'authenticate';
  challenge: string;
  browserBinding: string;
  expiresAt: number;
}

/**
 * A sign-in sent to an upstream identity provider (config `upstreams`), kept until its callback comes back once (taken
 * with takeRecord, so of racing replicas one finishes it) or 10 minutes pass. Kept under the hash of the `state` sent
 * upstream (a bearer value in a URL); it names the interaction it continues, which holds the client's request.
 */
export interface UpstreamAuthorizationRecord {
  id: string;
  /** The interaction the callback continues: its id, sealed (it is a bearer value, like the interaction's URL). */
  interactionId: string;
  /** Its client: the record goes with the client (clientOwner), like the interaction. */
  clientId: string;
  /** The configured upstream sent to, and its issuer then: the callback is completed by that upstream only. */
  upstreamId: string;
  upstreamIssuer: string;
  /** As InteractionRecord.browserBinding: only the browser that went upstream may come back with it. */
  browserBinding: string;
  nonce: string;
  /** The PKCE verifier sent with the code exchange, sealed with `encryptionKey` (core/sealing.ts). */
  codeVerifier: string;
  /** The callback URL sent upstream (`<issuer>/upstream/callback`), repeated in the code exchange. */
  redirectUri: string;
  createdAt: number;
  expiresAt: number;
}

/**
 * An upstream sign-in that has come back and waits for the interaction's code (consent may come first): who the
 * upstream said it was, and its tokens sealed for the grant the code will start (see UpstreamTokensRecord).
 */
export interface InteractionUpstream {
  upstreamId: string;
  upstreamIssuer: string;
  /** The Gatehouse user the identity maps to: the tokens are for a code of this user only. */
  subject: string;
  /** Pre-allocated: the code's grant, which the sealed tokens are bound to. */
  grantId: string;
  clientGeneration: string;
  /** The UpstreamTokens JSON, sealed with its binding as AAD (grants/upstream-tokens.ts). */
  sealedTokens: string;
}

/**
 * The upstream's tokens of one grant (access, refresh and ID token), sealed with `encryptionKey` and bound to the
 * grant: the AAD is (grant, subject, client, upstream, upstream client generation), so the envelope opens for that
 * binding only, and a read naming another subject, client or grant is refused (grants/upstream-tokens.ts). Kept
 * under the grant id, owned by the user (deleteUser removes it); revoking the grant deletes it.
 */
export interface UpstreamTokensRecord {
  /** The grant id. */
  id: string;
  grantId: string;
  /** The Gatehouse subject (user id) of the grant. */
  subject: string;
  clientId: string;
  upstreamId: string;
  upstreamIssuer: string;
  /** Which upstream client obtained them: tokens of a replaced upstream client are not served. */
  clientGeneration: string;
  /** The UpstreamTokens JSON, sealed; '' once `needsSignIn` (the tokens are dropped then). */
  sealedTokens: string;
  /**
   * Bumped by every write after the first (a refresh, or marking `needsSignIn`); absent reads as 0. Only the holder
   * of the refresh lease for version v writes v+1 (grants/upstream-tokens.ts freshUpstreamTokens).
   */
  version?: number;
  /** The refresh token of this version was sent upstream (set before sending): it is never sent again. */
  refreshSpent?: boolean;
  /** The upstream refused the refresh token (or it was spent and lost): the user has to sign in again. */
  needsSignIn?: boolean;
  createdAt: number;
  expiresAt: number;
}

/**
 * An upstream identity linked to an existing local account by its verified email (`linkByVerifiedEmail`): the next
 * sign-in of (issuer, subject) finds that account without asking the email again. Kept under a hash of
 * (issuer, subject), owned by the user; renewed at every sign-in. Identities without a link map to a user whose id is
 * derived from (issuer, subject) and need no record (authorization/upstream-sign-in.ts).
 */
export interface UpstreamLinkRecord {
  id: string;
  userId: string;
  upstreamId: string;
  upstreamIssuer: string;
  upstreamSubject: string;
  linkedAt: number;
  expiresAt: number;
}

/**
 * Gatehouse's own client registration at an upstream (RFC 7591), keyed by the SHA-256 of (issuer, upstream id,
 * redirect_uri, sorted scopes): upstream/registration.ts. The secret and the RFC 7592 access token are sealed.
 */
export interface UpstreamRegistrationRecord {
  id: string;
  clientId: string;
  /** Sealed (encryptionKey), bound to the record id; '' when the upstream issued none. */
  sealedClientSecret: string;
  registrationClientUri?: string;
  /** Sealed, bound to the record id. */
  sealedRegistrationAccessToken?: string;
  /** Epoch ms. */
  issuedAt: number;
  /** 10 minutes before client_secret_expires_at (a sign-in begun with it completes with it); 0: ten years. */
  expiresAt: number;
  /** Random per registration: tokens obtained under another generation are not served. */
  generation: string;
  /**
   * A tombstone: the registration of `generation` was dropped (invalid_client) or answered already expired. Read as
   * absent; it names the round so the next registration takes a lease of its own.
   */
  dropped?: boolean;
}

/** An authorization code, keyed by the SHA-256 of the code. */
export interface AuthorizationCodeRecord {
  codeHash: string;
  /** The grant this code starts; pre-allocated so a replayed code can revoke what it issued. */
  grantId: string;
  clientId: string;
  userId: string;
  redirectUri: string;
  /** The authorization request carried redirect_uri: the token request must carry the identical value (RFC 6749 §4.1.3). */
  redirectUriSent: boolean;
  scope: string[];
  resource: string[];
  codeChallenge: string;
  nonce?: string;
  authTime: number;
  /** How the user signed in (RFC 8176); absent on codes from before: `pwd`. */
  amr?: string[];
  /** RFC 9449 §10 `dpop_jkt` of the authorization request: the token request must prove possession of that key. */
  dpopJkt?: string;
  createdAt: number;
  expiresAt: number;
}

/** Outcome of {@link AuthorizationCodeStore.consumeAuthorizationCode}. */
export type ConsumeCodeResult =
  | { status: 'consumed'; code: AuthorizationCodeRecord }
  /** The code was redeemed before: the caller must revoke the grant it started (RFC 6749 §4.1.2, RFC 9700 §4.5). */
  | { status: 'reused'; grantId: string; clientId: string }
  | { status: 'not_found' };

/** Outcome of {@link AuthorizationCodeStore.getAuthorizationCode}. */
export type CodeLookupResult =
  | { status: 'live'; code: AuthorizationCodeRecord }
  /** Redeemed before: as {@link ConsumeCodeResult} `reused`. */
  | { status: 'reused'; grantId: string; clientId: string }
  | { status: 'not_found' };

/** A grant: the family of tokens one authorization started. */
export interface GrantRecord {
  id: string;
  clientId: string;
  userId: string;
  scope: string[];
  resource: string[];
  authTime: number;
  /** How the user signed in (RFC 8176), from the code: refreshed ID tokens say it again. Absent before: `pwd`. */
  amr?: string[];
  nonce?: string;
  /**
   * RFC 9449 §5: the thumbprint of the DPoP key a public client's refresh tokens are bound to; every refresh must
   * prove possession of it. Absent: not bound (confidential clients, or no proof when the grant began).
   */
  dpopJkt?: string;
  createdAt: number;
  /** Absolute end of the family (refresh tokens cannot outlive it). */
  expiresAt: number;
  revokedAt?: number;
  /**
   * When the grant was last used: the time of its latest refresh-token rotation (set by rotateRefreshToken, the store
   * writes it; callers never pass it). Absent: never refreshed since created (createdAt is then the last use).
   */
  lastUsedAt?: number;
}

/** A refresh token, keyed by its SHA-256. */
export interface RefreshTokenRecord {
  tokenHash: string;
  grantId: string;
  clientId: string;
  /** Scope of this token (may be narrower than the grant's). */
  scope: string[];
  createdAt: number;
  expiresAt: number;
  /** Set when rotated: the time of rotation. */
  rotatedAt?: number;
  /**
   * The response of the rotation, sealed under the old token itself (core/crypto sealWithSecret), so a retry inside
   * the grace window returns the same pair. Useless to anyone without the old token.
   */
  successor?: string;
}

/** An issued access token id tied to a grant, so revoking the grant revokes it. */
export interface AccessTokenRef {
  jti: string;
  expiresAt: number;
}

/**
 * How long revokeGrant remembers an id it did not know (ms): at least the longest authorization-code lifetime, since a
 * code's grant can only be created while the code is live.
 */
export const GRANT_TOMBSTONE_TTL_MS = 10 * 60_000;

/** Outcome of {@link GrantStore.rotateRefreshToken}. */
export type RotateResult =
  | { status: 'rotated' }
  /** Already rotated within the grace window: here is the sealed response of that rotation. */
  | { status: 'grace'; successor: string }
  /** Already rotated before the grace window: reuse, the grant has been revoked by the store. */
  | { status: 'reused'; grantId: string }
  | { status: 'not_found' };

/** A remembered consent for (user, client). */
export interface ConsentRecord {
  userId: string;
  clientId: string;
  scope: string[];
  resource: string[];
  createdAt: number;
  expiresAt: number;
}

/**
 * A dynamically registered client's recent activity (clients/client-activity.ts): when it last obtained a token, as
 * far as one write a day per replica tells. Owned by the client; it expires `registration.cleanup.idleDays` after that
 * token, so a client without one has had no token for that long (or never had one). The id is the client id.
 */
export interface ClientActivityRecord {
  id: string;
  clientId: string;
  /** Epoch ms of the token that wrote the mark (the first of its day on the replica that wrote it). */
  lastTokenAt: number;
  expiresAt: number;
}

/**
 * The fingerprint of a dynamic registration's normalized metadata (endpoints/register.ts), pointing at the client it
 * created, so an identical re-registration within `registration.dedupe.windowSeconds` gets that client back instead
 * of a new one. The id is a keyed hash of the metadata; owned by the client (deleted with it).
 */
export interface RegistrationFingerprintRecord {
  id: string;
  clientId: string;
  expiresAt: number;
}

/**
 * A tenant: an issuer of its own under the deployment's origin, `<deployment issuer>/<id>`, with its own keys,
 * clients, users and everything else (model/ports.ts TenantScopes). `settings` override the deployment's config for
 * it (config/tenants.ts names which keys a tenant may set); they are validated before they are saved.
 */
export interface TenantRecord {
  /** TENANT_ID (model/tenants.ts): the issuer's last path segment. */
  id: string;
  settings: Record<string, unknown>;
  /** Where the tenant was declared: the config file (re-applied at every start) or the admin API / CLI. */
  source: 'config' | 'admin';
  createdAt: number;
  updatedAt: number;
}

/** One step of a flow trace: what happened, when, and why in plain words. */
export interface FlowTraceStep {
  /** ISO 8601. */
  time: string;
  /** Milliseconds since the trace's first step. */
  elapsedMs: number;
  /** The audit event type (`authorize.refused`, `token.issued`, ...). */
  step: string;
  outcome: string;
  /** Why, in plain words; never a secret, code or token. */
  detail: string;
  requestId?: string;
}

/**
 * A step as stored. Steps are appended without reading the trace (ExpiringRecordStore.appendToRecord), so the time
 * since the first step is computed when the trace is read (core/flow-trace.ts readTrace); traces written before
 * that still hold `elapsedMs`.
 */
export type FlowTraceStoredStep = Omit<FlowTraceStep, 'elapsedMs'> & { elapsedMs?: number };

/** The steps of one authorization, by its reference id (core/flow-trace.ts); kept for config `trace.ttlSeconds`. */
export interface FlowTraceRecord {
  /** The reference id (the grant id once a code is issued). */
  id: string;
  clientId?: string;
  /** When the first step happened (epoch ms): the first step of the write that created the trace. */
  startedAt: number;
  steps: FlowTraceStoredStep[];
  /** Steps left out beyond config `trace.maxSteps`. */
  droppedSteps?: number;
  expiresAt: number;
}

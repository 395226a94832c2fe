/**
 * Realistic records for the storage contract suite. Every time is relative to the test's clock, ids and secrets are
 * random (so tests never collide even against a shared database), and stored secrets are hashed as in production.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { hashToken, randomId, randomToken, sealWithSecret, sha256 } from '../../core/crypto.js';
import type {
  AccessTokenRef,
  ClientActivityRecord,
  DeviceAuthorizationRecord,
  DeviceDecisionRecord,
  DeviceUserCodeRecord,
  RegistrationFingerprintRecord,
  FlowTraceRecord,
  AuthorizationCodeRecord,
  ClientRecord,
  ConsentRecord,
  GrantRecord,
  InteractionRecord,
  PendingSignInRecord,
  PushedRequestRecord,
  RefreshTokenRecord,
  SessionRecord,
  TotpEnrolmentRecord,
  UpstreamAuthorizationRecord,
  UpstreamRegistrationRecord,
  UpstreamLinkRecord,
  SetupLinkRecord,
  UpstreamTokensRecord,
  WebAuthnChallengeRecord,
  SigningKeyRecord,
  UserRecord,
} from '../../model/records.js';
import { RECORD_KINDS, type RecordKind } from '../../model/record-kinds.js';

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** A confidential web client as dynamic registration would store it. */
export function clientFixture(clock: Clock, overrides: Partial<ClientRecord> = {}): ClientRecord {
  const now = clock.now();
  return {
    clientId: randomId(),
    clientSecretHash: `hmac:${randomToken()}`,
    registrationAccessTokenHash: hashToken(randomToken()),
    redirectUris: ['https://notes.example.com/oauth/callback'],
    postLogoutRedirectUris: ['https://notes.example.com/signed-out'],
    grantTypes: ['authorization_code', 'refresh_token'],
    responseTypes: ['code'],
    scope: ['openid', 'profile', 'email', 'offline_access'],
    tokenEndpointAuthMethod: 'client_secret_basic',
    applicationType: 'web',
    clientName: 'Example Notes',
    clientUri: 'https://notes.example.com',
    logoUri: 'https://notes.example.com/logo.png',
    contacts: ['ops@notes.example.com'],
    requirePushedAuthorizationRequests: true,
    dpopBoundAccessTokens: true,
    source: 'dynamic',
    createdAt: now,
    updatedAt: now,
    clientSecretExpiresAt: 0,
    ...overrides,
  };
}

/** A public native client (an MCP desktop app) authenticating with nothing but PKCE, with a JWKS of its own. */
export function publicClientFixture(clock: Clock, overrides: Partial<ClientRecord> = {}): ClientRecord {
  const { clientSecretHash: _secret, registrationAccessTokenHash: _rat, ...base } = clientFixture(clock);
  return {
    ...base,
    redirectUris: ['http://127.0.0.1/callback', 'com.example.desktop:/oauth'],
    tokenEndpointAuthMethod: 'none',
    applicationType: 'native',
    clientName: 'Example Desktop',
    softwareId: 'b7c1d0a2-5f8e-4e8a-9c3d-2f1e0a9b8c7d',
    softwareVersion: '2.4.1',
    jwks: { keys: [{ ...signingKeyFixture(clock, 'EdDSA').publicJwk }] },
    ...overrides,
  };
}

/** A user's second factors as the sign-in stores them: a sealed TOTP secret, a passkey, recovery-code hashes. */
export function secondFactorsFixture(
  clock: Clock,
): Required<Pick<UserRecord, 'mfaRequired' | 'totp' | 'passkeys' | 'recoveryCodes'>> {
  const now = clock.now();
  return {
    mfaRequired: true,
    totp: { secret: `sealed:v1:0a1b2c3d:${randomToken(48)}`, createdAt: now - DAY },
    passkeys: [
      {
        id: randomToken(16),
        publicKey: randomToken(77),
        counter: 3,
        transports: ['internal', 'hybrid'],
        deviceType: 'multiDevice',
        backedUp: true,
        name: 'Laptop',
        createdAt: now - DAY,
        lastUsedAt: now - HOUR,
      },
    ],
    recoveryCodes: { batch: randomId(), hashes: [randomToken(), randomToken()], createdAt: now - DAY },
  };
}

/** A local user with a scrypt password hash. */
export function userFixture(clock: Clock, overrides: Partial<UserRecord> = {}): UserRecord {
  const now = clock.now();
  const id = randomId();
  return {
    id,
    username: `alice-${id.slice(0, 8).toLowerCase()}`,
    passwordHash: `scrypt$ln=17,r=8,p=1$${randomToken(16)}$${randomToken(32)}`,
    email: `alice-${id.slice(0, 8).toLowerCase()}@example.com`,
    emailVerified: true,
    name: 'Alice Example',
    createdAt: now,
    updatedAt: now,
    ...overrides,
  };
}

let rsaPair: { privateKey: KeyObject; publicKey: KeyObject } | undefined;

/** A real key pair as JWKs (RSA is generated once per process because it is slow). */
export function signingKeyFixture(
  clock: Clock,
  alg: SigningKeyRecord['alg'] = 'ES256',
  overrides: Partial<SigningKeyRecord> = {},
): SigningKeyRecord {
  const pair =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : alg === 'EdDSA'
        ? generateKeyPairSync('ed25519')
        : (rsaPair ??= generateKeyPairSync('rsa', { modulusLength: 2048 }));
  const kid = randomId();
  return {
    kid,
    alg,
    privateJwk: { ...pair.privateKey.export({ format: 'jwk' }), kid, alg, use: 'sig' },
    publicJwk: { ...pair.publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' },
    createdAt: clock.now(),
    status: 'active',
    ...overrides,
  };
}

/** A pending authorization request with PKCE, before the user has signed in. */
export function interactionFixture(clock: Clock, overrides: Partial<InteractionRecord> = {}): InteractionRecord {
  const now = clock.now();
  return {
    id: randomId(),
    clientId: randomId(),
    redirectUri: 'http://127.0.0.1:53682/callback',
    redirectUriSent: true,
    state: randomToken(16),
    nonce: randomToken(16),
    scope: ['openid', 'profile', 'offline_access'],
    resource: ['https://mcp.example.com/'],
    codeChallenge: sha256(randomToken()).toString('base64url'),
    codeChallengeMethod: 'S256',
    prompt: ['consent'],
    maxAge: 3600,
    responseMode: 'query',
    browserBinding: sha256(randomToken()).toString('base64url'),
    createdAt: now,
    expiresAt: now + 10 * MINUTE,
    ...overrides,
  };
}

/** A browser login session. */
export function sessionFixture(clock: Clock, overrides: Partial<SessionRecord> = {}): SessionRecord {
  const now = clock.now();
  return {
    id: randomToken(),
    userId: randomId(),
    authTime: now,
    amr: ['pwd'],
    createdAt: now,
    expiresAt: now + 8 * HOUR,
    ...overrides,
  };
}

/** A pushed authorization request (RFC 9126) of a confidential client, as POST /par stores it. */
export function pushedRequestFixture(clock: Clock, overrides: Partial<PushedRequestRecord> = {}): PushedRequestRecord {
  const now = clock.now();
  return {
    id: randomToken(),
    clientId: randomId(),
    params: {
      response_type: ['code'],
      redirect_uri: ['https://notes.example.com/oauth/callback'],
      scope: ['openid profile offline_access'],
      state: [randomToken(16)],
      code_challenge: [sha256(randomToken()).toString('base64url')],
      code_challenge_method: ['S256'],
      resource: ['https://mcp.example.com/', 'https://files.example.com/'],
      prompt: ['consent'],
    },
    createdAt: now,
    expiresAt: now + MINUTE,
    ...overrides,
  };
}

/** The name of a registered record kind (model/record-kinds.ts). */
export type RecordKindName = keyof typeof RECORD_KINDS;

/** The record type a registered kind holds. */
export type RecordOfKind<K extends RecordKindName> = (typeof RECORD_KINDS)[K] extends RecordKind<infer T> ? T : never;

/**
 * A realistic record of every registered kind, for the table-driven record-kinds section: a new kind in RECORD_KINDS
 * fails the type check until it has a fixture here, and then needs no contract test of its own.
 */
export const RECORD_KIND_FIXTURES: { [K in RecordKindName]: (clock: Clock) => RecordOfKind<K> } = {
  interaction: (clock) => interactionFixture(clock),
  session: (clock) => sessionFixture(clock),
  pushedRequest: (clock) => pushedRequestFixture(clock),
  pendingSignIn: (clock): PendingSignInRecord => ({
    id: hashToken(randomToken()),
    userId: randomId(),
    browserBinding: sha256(randomToken()).toString('base64url'),
    createdAt: clock.now(),
    expiresAt: clock.now() + 10 * MINUTE,
  }),
  totpEnrolment: (clock): TotpEnrolmentRecord => ({
    id: hashToken(randomToken()),
    userId: randomId(),
    secret: `sealed:v1:0a1b2c3d:${randomToken(48)}`,
    expiresAt: clock.now() + 15 * MINUTE,
  }),
  webauthnChallenge: (clock): WebAuthnChallengeRecord => {
    const challenge = randomToken();
    return {
      id: hashToken(challenge),
      userId: randomId(),
      purpose: 'authenticate',
      challenge,
      browserBinding: sha256(randomToken()).toString('base64url'),
      expiresAt: clock.now() + 5 * MINUTE,
    };
  },
  upstreamRegistration: (clock): UpstreamRegistrationRecord => ({
    id: sha256(randomToken()).toString('hex'),
    clientId: randomToken(16),
    sealedClientSecret: `sealed:v1:0a1b2c3d:${randomToken(48)}`,
    registrationClientUri: 'https://login.corp.example.com/reg/abc',
    sealedRegistrationAccessToken: `sealed:v1:0a1b2c3d:${randomToken(48)}`,
    issuedAt: clock.now(),
    expiresAt: clock.now() + 30 * 86_400_000,
    generation: randomId(),
  }),
  upstreamAuthorization: (clock): UpstreamAuthorizationRecord => ({
    id: hashToken(randomToken()),
    interactionId: randomToken(24),
    clientId: randomId(),
    upstreamId: 'corp',
    upstreamIssuer: 'https://login.corp.example.com',
    browserBinding: sha256(randomToken()).toString('base64url'),
    nonce: randomToken(),
    codeVerifier: `sealed:v1:0a1b2c3d:${randomToken(48)}`,
    redirectUri: 'https://auth.example.com/upstream/callback',
    createdAt: clock.now(),
    expiresAt: clock.now() + 10 * MINUTE,
  }),
  upstreamTokens: (clock): UpstreamTokensRecord => {
    const grantId = randomId();
    return {
      id: grantId,
      grantId,
      subject: randomId(),
      clientId: randomId(),
      upstreamId: 'corp',
      upstreamIssuer: 'https://login.corp.example.com',
      clientGeneration: randomToken(8),
      sealedTokens: `sealed:v1:0a1b2c3d:${randomToken(96)}`,
      createdAt: clock.now(),
      expiresAt: clock.now() + 90 * DAY,
    };
  },
  deviceAuthorization: (clock): DeviceAuthorizationRecord => ({
    id: hashToken(randomToken()),
    clientId: randomId(),
    userCodeHash: hashToken(randomToken()),
    scope: ['openid', 'offline_access', 'mcp:read'],
    resource: ['https://mcp.example.com/'],
    grantId: randomId(),
    interval: 5,
    createdAt: clock.now(),
    codeExpiresAt: clock.now() + 10 * MINUTE,
    expiresAt: clock.now() + 20 * MINUTE,
  }),
  deviceUserCode: (clock): DeviceUserCodeRecord => ({
    id: hashToken(randomToken()),
    deviceCodeHash: hashToken(randomToken()),
    clientId: randomId(),
    expiresAt: clock.now() + 10 * MINUTE,
  }),
  deviceDecision: (clock): DeviceDecisionRecord => ({
    id: hashToken(randomToken()),
    clientId: randomId(),
    approved: true,
    userId: randomId(),
    authTime: clock.now(),
    amr: ['pwd', 'otp', 'mfa'],
    scope: ['openid', 'mcp:read'],
    resource: [],
    grantId: randomId(),
    createdAt: clock.now(),
    expiresAt: clock.now() + 10 * MINUTE,
  }),
  setupLink: (clock): SetupLinkRecord => ({
    id: hashToken(randomToken()),
    createdAt: clock.now(),
    expiresAt: clock.now() + 15 * MINUTE,
  }),
  upstreamLink: (clock): UpstreamLinkRecord => ({
    id: hashToken(randomToken()),
    userId: randomId(),
    upstreamId: 'corp',
    upstreamIssuer: 'https://login.corp.example.com',
    upstreamSubject: randomId(),
    linkedAt: clock.now(),
    expiresAt: clock.now() + 365 * DAY,
  }),
  clientActivity: (clock): ClientActivityRecord => {
    const clientId = randomId();
    return { id: clientId, clientId, lastTokenAt: clock.now(), expiresAt: clock.now() + 90 * DAY };
  },
  registrationFingerprint: (clock): RegistrationFingerprintRecord => ({
    id: sha256(randomToken()).toString('base64url'),
    clientId: randomId(),
    expiresAt: clock.now() + DAY,
  }),
  flowTrace: (clock): FlowTraceRecord => ({
    id: randomId(),
    clientId: randomId(),
    startedAt: clock.now(),
    steps: [
      {
        time: new Date(clock.now()).toISOString(),
        elapsedMs: 0,
        step: 'authorize.refused',
        outcome: 'denied',
        detail: 'redirect_uri refused: registered http://127.0.0.1:3000/cb, got http://127.0.0.1:3001/cb',
        requestId: 'req-1',
      },
    ],
    expiresAt: clock.now() + DAY,
  }),
};

/** An authorization code (the plaintext `code` is what the client would hold; the store sees only its hash). */
export function codeFixture(
  clock: Clock,
  overrides: Partial<AuthorizationCodeRecord> = {},
): { code: string; record: AuthorizationCodeRecord } {
  const now = clock.now();
  const code = randomToken();
  return {
    code,
    record: {
      codeHash: hashToken(code),
      grantId: randomId(),
      clientId: randomId(),
      userId: randomId(),
      redirectUri: 'https://notes.example.com/oauth/callback',
      redirectUriSent: true,
      scope: ['openid', 'profile', 'offline_access'],
      resource: ['https://mcp.example.com/'],
      codeChallenge: sha256(randomToken()).toString('base64url'),
      nonce: randomToken(16),
      authTime: now - MINUTE,
      amr: ['pwd', 'otp', 'mfa'],
      // RFC 7638 thumbprint shape: 43 base64url characters.
      dpopJkt: hashToken(randomToken()),
      createdAt: now,
      expiresAt: now + MINUTE,
      ...overrides,
    },
  };
}

/** A grant living 30 days. */
export function grantFixture(clock: Clock, overrides: Partial<GrantRecord> = {}): GrantRecord {
  const now = clock.now();
  return {
    id: randomId(),
    clientId: randomId(),
    userId: randomId(),
    scope: ['openid', 'profile', 'offline_access'],
    resource: ['https://mcp.example.com/'],
    authTime: now - MINUTE,
    amr: ['pwd', 'hwk', 'user', 'mfa'],
    nonce: randomToken(16),
    dpopJkt: hashToken(randomToken()),
    createdAt: now,
    expiresAt: now + 30 * DAY,
    ...overrides,
  };
}

/** A refresh token of `grant` (plaintext `token` plus the stored record), living 14 days but never past the grant. */
export function refreshTokenFixture(
  clock: Clock,
  grant: GrantRecord,
  overrides: Partial<RefreshTokenRecord> = {},
): { token: string; record: RefreshTokenRecord } {
  const now = clock.now();
  const token = randomToken();
  return {
    token,
    record: {
      tokenHash: hashToken(token),
      grantId: grant.id,
      clientId: grant.clientId,
      scope: grant.scope,
      createdAt: now,
      expiresAt: Math.min(now + 14 * DAY, grant.expiresAt),
      ...overrides,
    },
  };
}

/** An access token id living one hour. */
export function accessTokenFixture(clock: Clock, overrides: Partial<AccessTokenRef> = {}): AccessTokenRef {
  return { jti: randomId(), expiresAt: clock.now() + HOUR, ...overrides };
}

/** The sealed token response a rotation stores, as the token endpoint would build it. */
export function successorFixture(oldToken: string, newToken: string): string {
  return sealWithSecret(
    oldToken,
    'gatehouse refresh successor',
    JSON.stringify({ access_token: randomToken(), refresh_token: newToken, token_type: 'Bearer', expires_in: 3600 }),
  );
}

/** A remembered consent living 90 days. */
export function consentFixture(clock: Clock, overrides: Partial<ConsentRecord> = {}): ConsentRecord {
  const now = clock.now();
  return {
    userId: randomId(),
    clientId: randomId(),
    scope: ['openid', 'profile'],
    resource: ['https://mcp.example.com/'],
    createdAt: now,
    expiresAt: now + 90 * DAY,
    ...overrides,
  };
}

/** A rate-limit key as the login throttle builds it: a namespace and a keyed hash, never the raw username or IP. */
export function rateLimitKeyFixture(namespace = 'login:user'): string {
  return `${namespace}:${hashToken(randomToken())}`;
}

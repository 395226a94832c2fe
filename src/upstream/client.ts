/**
 * The relying-party side of upstream sign-in (upstream/provider.ts): authorization requests with state, nonce and PKCE
 * S256 towards the upstream, the callback checked (RFC 9207 `iss`, `error`), the code exchanged, and the identity
 * validated: for OpenID Connect the ID token, with jose against the upstream's JWKS (iss, aud, azp, exp, iat, nonce);
 * for plain OAuth 2.0 the user endpoint through the claim mapping. Discovery is lazy and cached (a failure is not);
 * the JWKS is jose's remote set (cached, refetched for an unknown key at most every 30 s).
 */
import { readFileSync } from 'node:fs';
import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { UpstreamConfig } from '../config/upstreams.js';
import type { Clock } from '../core/clock.js';
import { randomToken, safeEqual } from '../core/crypto.js';
import { s256 } from '../core/pkce.js';
import { ConfigError } from '../model/errors.js';
import {
  callUpstream,
  jsonBody,
  jsonObject,
  oauthErrorOf,
  safeUrl,
  upstreamText,
  type FetchLike,
  type UpstreamAnswer,
  type UpstreamCaller,
} from './http.js';
import {
  resolveUpstream,
  type ResolvedOAuth2Upstream,
  type ResolvedOidcUpstream,
  type SecretSource,
} from './presets.js';
import {
  dropRegistration,
  ensureRegistration,
  registrationGeneration,
  type RegistrationContext,
  type RegistrationStore,
  type UpstreamCredentials,
} from './registration.js';
import {
  UpstreamError,
  type UpstreamIdentity,
  type UpstreamProvider,
  type UpstreamRequest,
  type UpstreamStatus,
  type UpstreamTokens,
} from './provider.js';

/** What the providers log (pino satisfies it). */
export interface UpstreamLogger {
  warn(obj: object, msg?: string): void;
}

export interface UpstreamProviderOptions {
  clock: Clock;
  logger: UpstreamLogger;
  /** Default the global fetch. */
  fetch?: FetchLike;
  /** Where `clientSecretEnv` is read; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Where dynamically registered credentials are kept (required by an upstream with `registration`). */
  registrations?: RegistrationStore;
}

/** Metadata is used this long, then fetched again on next use. */
const METADATA_TTL_MS = 3600_000;
/** After a failed refresh the old metadata is used this long before the next try. */
const METADATA_RETRY_MS = 60_000;
/** Leeway for exp and iat against the upstream's clock, seconds. */
const CLOCK_TOLERANCE_S = 30;
/** ID token algorithms accepted when the metadata lists some (asymmetric only: an HMAC key would be our secret). */
const ASYMMETRIC_ALGS = new Set([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]);

interface Endpoints {
  authorizationEndpoint: string;
  tokenEndpoint: string;
  /** The issuer `iss` on the callback must equal. */
  issuer: string;
  /** The upstream says it always sends `iss` on the callback (RFC 9207 §3). */
  issParameterSupported: boolean;
  /** PKCE S256 is sent (the upstream's metadata does not rule it out). */
  pkce: boolean;
  /** The discovery document's registration_endpoint (RFC 7591), if any. */
  registrationEndpoint?: string;
}

function readSecret(id: string, source: SecretSource | undefined, env: NodeJS.ProcessEnv): string {
  if (source === undefined) return '';
  if ('inline' in source) return source.inline;
  if ('env' in source) {
    const value = env[source.env];
    if (!value) {
      throw new ConfigError(
        `invalid configuration:\n  upstreams[${id}].clientSecretEnv: environment variable ${source.env} is not set`,
      );
    }
    return value;
  }
  let text: string;
  try {
    text = readFileSync(source.file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(
      `invalid configuration:\n  upstreams[${id}].clientSecretFile: cannot read ${source.file}: ${(err as Error).message}`,
    );
  }
  if (!text)
    throw new ConfigError(`invalid configuration:\n  upstreams[${id}].clientSecretFile: ${source.file} is empty`);
  return text;
}

const isLoopback = (url: string) => {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
};

const param = (callback: URLSearchParams, name: string, label: string): string | undefined => {
  const values = callback.getAll(name);
  if (values.length > 1) throw new UpstreamError('invalid_response', `${label}: the callback repeats ${name}`);
  return values[0];
};

/** A JSON boolean, or the strings some providers send instead. */
const asBoolean = (v: unknown): boolean | undefined =>
  v === true || v === 'true' ? true : v === false || v === 'false' ? false : undefined;

const asString = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** What both kinds share: the authorization request, the callback checks, the code exchange. */
abstract class UpstreamBase implements UpstreamProvider {
  readonly id: string;
  readonly name: string;
  readonly issuer: string;
  protected readonly caller: UpstreamCaller;

  constructor(
    protected readonly settings: ResolvedOidcUpstream | ResolvedOAuth2Upstream,
    protected readonly secret: string,
    protected readonly options: UpstreamProviderOptions,
  ) {
    this.id = settings.id;
    this.name = settings.name;
    this.issuer = settings.issuer;
    this.caller = {
      label: `upstream "${settings.id}"`,
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
      timeoutMs: settings.timeoutMs,
    };
    // Without a store (the CLI's checks) only discovery is usable: credentials() refuses.
    if (settings.registration && options.registrations) {
      this.registration = {
        settings,
        store: options.registrations,
        caller: this.caller,
        clock: options.clock,
        logger: options.logger,
        ...(options.env ? { env: options.env } : {}),
        endpoint: async () => (await this.endpoints()).registrationEndpoint,
      };
      const context = this.registration;
      this.registrationGeneration = () => registrationGeneration(context);
    }
  }

  /** With `registration: dynamic`: where the registered credentials are kept. */
  protected readonly registration?: RegistrationContext;

  /** The client id and secret to use now: configured, or the stored registration (registering when there is none). */
  protected credentials(): Promise<UpstreamCredentials> {
    if (this.settings.registration && !this.registration) {
      return Promise.reject(
        new ConfigError(
          `invalid configuration:\n  upstreams[${this.id}].registration: needs the store and an encryptionKey`,
        ),
      );
    }
    if (!this.registration) {
      return Promise.resolve({ clientId: this.settings.clientId, clientSecret: this.secret, generation: '' });
    }
    return ensureRegistration(this.registration);
  }

  /** The stored registration's generation (dynamic upstreams only), for the upstream client generation. */
  readonly registrationGeneration?: () => Promise<string | undefined>;

  protected abstract endpoints(): Promise<Endpoints>;

  protected abstract identify(
    tokens: UpstreamTokens,
    pending: { nonce: string; clientId: string },
  ): Promise<Omit<UpstreamIdentity, 'upstreamId' | 'issuer'>>;

  /** Parameters of the authorization request besides the protocol's own. */
  protected requestParams(nonce: string): Record<string, string> {
    void nonce;
    return {};
  }

  async begin(redirectUri: string): Promise<UpstreamRequest> {
    const endpoints = await this.endpoints();
    const { clientId } = await this.credentials();
    const state = randomToken();
    const nonce = randomToken();
    const codeVerifier = randomToken(32);
    const url = new URL(endpoints.authorizationEndpoint);
    for (const [key, value] of Object.entries(this.settings.authorizationParams)) url.searchParams.set(key, value);
    const params: Record<string, string> = {
      response_type: 'code',
      client_id: clientId,
      redirect_uri: redirectUri,
      ...(this.settings.scopes.length > 0 ? { scope: this.settings.scopes.join(' ') } : {}),
      state,
      ...this.requestParams(nonce),
      ...(endpoints.pkce ? { code_challenge: s256(codeVerifier), code_challenge_method: 'S256' } : {}),
    };
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
    for (const key of this.settings.forbiddenParams) url.searchParams.delete(key);
    return { url: url.href, state, nonce, codeVerifier };
  }

  async complete(
    callback: URLSearchParams,
    pending: Pick<UpstreamRequest, 'nonce' | 'codeVerifier'> & { redirectUri: string },
  ): Promise<{ identity: UpstreamIdentity; tokens: UpstreamTokens }> {
    const label = this.caller.label;
    const endpoints = await this.endpoints();
    // RFC 9207: checked before anything else in the response, errors included (mix-up defence).
    const iss = param(callback, 'iss', label);
    if (iss !== undefined && iss !== endpoints.issuer) {
      throw new UpstreamError(
        'invalid_response',
        `${label}: the callback's iss is not the upstream's issuer ${endpoints.issuer} (a mix-up?)`,
      );
    }
    if (iss === undefined && endpoints.issParameterSupported) {
      throw new UpstreamError(
        'invalid_response',
        `${label}: the callback has no iss, though the upstream's metadata says it sends one (RFC 9207)`,
      );
    }
    const error = param(callback, 'error', label);
    if (error !== undefined) {
      const described = oauthErrorOf(Object.fromEntries(callback));
      if (error === 'access_denied') {
        throw new UpstreamError('access_denied', `${label}: the user did not allow the sign-in${described}`);
      }
      throw new UpstreamError('invalid_response', `${label}: the upstream answered with an error${described}`);
    }
    const code = param(callback, 'code', label);
    if (!code) throw new UpstreamError('invalid_response', `${label}: the callback has neither a code nor an error`);
    const credentials = await this.credentials();
    const tokens = await this.exchange(endpoints, code, pending, credentials);
    const who = await this.identify(tokens, { ...pending, clientId: credentials.clientId });
    return { identity: { upstreamId: this.id, issuer: this.issuer, ...who }, tokens };
  }

  /** The token request (authorization_code), authenticated with the client secret. */
  private exchange(
    endpoints: Endpoints,
    code: string,
    pending: { codeVerifier: string; redirectUri: string },
    credentials: UpstreamCredentials,
  ): Promise<UpstreamTokens> {
    const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: pending.redirectUri });
    if (endpoints.pkce) form.set('code_verifier', pending.codeVerifier);
    return this.tokenRequest(
      endpoints.tokenEndpoint,
      form,
      'the code',
      [code, pending.codeVerifier],
      false,
      credentials,
    );
  }

  async refresh(refreshToken: string): Promise<UpstreamTokens> {
    const endpoints = await this.endpoints();
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken });
    const credentials = await this.credentials();
    const tokens = await this.tokenRequest(
      endpoints.tokenEndpoint,
      form,
      'the refresh token',
      [refreshToken],
      true,
      credentials,
    );
    // RFC 6749 §6: a new refresh token is optional; without one the old one stays valid.
    tokens.refreshToken ??= refreshToken;
    if (tokens.idToken) await this.checkRefreshedIdToken(tokens.idToken, credentials.clientId);
    return tokens;
  }

  /** An ID token in a refresh response (OIDC): validated as at sign-in, without a nonce. */
  protected checkRefreshedIdToken(idToken: string, clientId: string): Promise<void> {
    void idToken;
    void clientId;
    return Promise.resolve();
  }

  status(): UpstreamStatus {
    return { status: 'up', discovery: 'static' };
  }

  probe(minIntervalMs?: number): Promise<UpstreamStatus> {
    void minIntervalMs;
    return Promise.resolve(this.status());
  }

  /**
   * A token request authenticated with the client secret; `what` names the grant in messages. For a refresh, a
   * refused grant is 'invalid_grant' (a new sign-in is needed); for a code it is one more invalid_response.
   */
  private async tokenRequest(
    url: string,
    form: URLSearchParams,
    what: string,
    secrets: string[],
    refreshing: boolean,
    credentials: UpstreamCredentials,
  ): Promise<UpstreamTokens> {
    const label = this.caller.label;
    const { clientId, clientSecret } = credentials;
    const headers: Record<string, string> = {
      accept: 'application/json',
      'content-type': 'application/x-www-form-urlencoded',
      'user-agent': 'gatehouse',
    };
    if (this.settings.tokenEndpointAuthMethod === 'client_secret_post') {
      form.set('client_id', clientId);
      form.set('client_secret', clientSecret);
    } else {
      // RFC 6749 §2.3.1: each part form-urlencoded before base64.
      const pair = `${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`;
      headers.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
    }
    const answer = await callUpstream(this.caller, 'token endpoint', url, {
      method: 'POST',
      headers,
      body: form.toString(),
    });
    const where = `${label}: token endpoint ${safeUrl(url)}`;
    const redact = [...secrets, clientSecret];
    const forgotten = async (json: Record<string, unknown> | undefined) => {
      // A registration the upstream no longer knows: registered again at the next use (a new generation).
      if (this.registration && json?.error === 'invalid_client') {
        await dropRegistration(this.registration, credentials.generation);
        return true;
      }
      return false;
    };
    // invalid_grant (RFC 6749 §5.2), and GitHub's bad_refresh_token (with HTTP 200).
    const refused = (json: Record<string, unknown> | undefined) =>
      refreshing && (json?.error === 'invalid_grant' || json?.error === 'bad_refresh_token')
        ? 'invalid_grant'
        : 'invalid_response';
    if (answer.status !== 200) {
      const error = jsonObject(answer);
      const detail = oauthErrorOf(error, redact);
      if (answer.status >= 400 && answer.status < 500) {
        const failure = (await forgotten(error)) && refreshing ? 'invalid_grant' : refused(error);
        throw new UpstreamError(failure, `${where} refused ${what}: HTTP ${answer.status}${detail}`);
      }
      throw new UpstreamError('unavailable', `${where} answered HTTP ${answer.status}${detail}`);
    }
    const body = jsonBody(this.caller, 'token endpoint', url, answer);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new UpstreamError('unavailable', `${where} answered JSON that is not an object`);
    }
    const json = body as Record<string, unknown>;
    // GitHub answers errors with HTTP 200.
    if (json.error !== undefined) {
      const failure = (await forgotten(json)) && refreshing ? 'invalid_grant' : refused(json);
      throw new UpstreamError(failure, `${where} refused ${what}${oauthErrorOf(json, redact)}`);
    }
    const accessToken = asString(json.access_token);
    if (!accessToken) throw new UpstreamError('invalid_response', `${where} answered no access_token`);
    const expiresIn = typeof json.expires_in === 'string' ? Number(json.expires_in) : json.expires_in;
    const tokens: UpstreamTokens = {
      tokenType: asString(json.token_type) ?? 'Bearer',
      accessToken,
    };
    const refreshToken = asString(json.refresh_token);
    if (refreshToken) tokens.refreshToken = refreshToken;
    const idToken = asString(json.id_token);
    if (idToken) tokens.idToken = idToken;
    if (typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0) {
      tokens.expiresAt = this.options.clock.now() + Math.floor(expiresIn) * 1000;
    }
    const scope = asString(json.scope);
    if (scope) tokens.scope = scope;
    return tokens;
  }

  /** GET a JSON document with the access token (userinfo, GitHub's /user and /user/emails). */
  protected async getWithToken(
    what: string,
    url: string,
    tokens: UpstreamTokens,
    headers: Record<string, string> = { accept: 'application/json' },
  ): Promise<unknown> {
    const answer: UpstreamAnswer = await callUpstream(this.caller, what, url, {
      headers: { ...headers, authorization: `Bearer ${tokens.accessToken}`, 'user-agent': 'gatehouse' },
    });
    const where = `${this.caller.label}: ${what} ${safeUrl(url)}`;
    if (answer.status !== 200) {
      const detail = oauthErrorOf(jsonObject(answer), [tokens.accessToken]);
      const failure = answer.status >= 400 && answer.status < 500 ? 'invalid_response' : 'unavailable';
      throw new UpstreamError(failure, `${where} answered HTTP ${answer.status}${detail}`);
    }
    return jsonBody(this.caller, what, url, answer);
  }
}

interface OidcMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  userinfo_endpoint?: string;
  code_challenge_methods_supported?: string[];
  id_token_signing_alg_values_supported?: string[];
  authorization_response_iss_parameter_supported?: boolean;
  registration_endpoint?: string;
}

interface Discovered {
  metadata: OidcMetadata;
  keys: JWTVerifyGetKey;
  /** When it is to be fetched again. */
  refreshAt: number;
}

const isUrl = (v: unknown): v is string => {
  if (typeof v !== 'string') return false;
  try {
    return /^https?:$/.test(new URL(v).protocol);
  } catch {
    return false;
  }
};

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

class OidcUpstream extends UpstreamBase {
  private discovered?: Discovered;
  private inflight?: Promise<Discovered>;
  /** The outcome of the last discovery or probe (for /health; no network to read it). */
  private lastCheck: UpstreamStatus = { status: 'unknown', discovery: 'unchecked' };
  private probing?: Promise<UpstreamStatus>;

  constructor(
    protected override readonly settings: ResolvedOidcUpstream,
    secret: string,
    options: UpstreamProviderOptions,
  ) {
    super(settings, secret, options);
  }

  /** The discovery document, fetched on first use and after METADATA_TTL_MS; concurrent callers share one fetch. */
  private async discover(): Promise<Discovered> {
    const now = this.options.clock.now();
    const current = this.discovered;
    if (current && now < current.refreshAt) return current;
    this.inflight ??= this.fetchMetadata(current).finally(() => (this.inflight = undefined));
    try {
      const found = await this.inflight;
      this.checked();
      return found;
    } catch (err) {
      this.checked(err);
      if (!current) throw err;
      // The upstream may be back by the next sign-in; until then the copy we have still names its endpoints.
      current.refreshAt = now + METADATA_RETRY_MS;
      this.options.logger.warn(
        { upstream: this.id, err: (err as Error).message },
        'upstream discovery failed; using the metadata fetched before',
      );
      return current;
    }
  }

  private async fetchMetadata(previous: Discovered | undefined): Promise<Discovered> {
    const label = this.caller.label;
    const url = `${this.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
    const answer = await callUpstream(this.caller, 'discovery', url, { headers: { accept: 'application/json' } });
    const where = `${label}: discovery ${safeUrl(url)}`;
    if (answer.status !== 200) throw new UpstreamError('unavailable', `${where} answered HTTP ${answer.status}`);
    const doc = jsonBody(this.caller, 'discovery', url, answer) as Record<string, unknown> | null;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      throw new UpstreamError('unavailable', `${where} answered JSON that is not an object`);
    }
    // OpenID Connect Discovery §4.3: exactly the issuer asked about, or the document is someone else's.
    if (doc.issuer !== this.issuer) {
      throw new UpstreamError(
        'invalid_response',
        `${where} names issuer ${upstreamText(doc.issuer, 120)}, not the configured ${this.issuer}`,
      );
    }
    for (const key of ['authorization_endpoint', 'token_endpoint', 'jwks_uri'] as const) {
      if (!isUrl(doc[key])) throw new UpstreamError('invalid_response', `${where} has no valid ${key}`);
    }
    const optionalUrl = (key: string) => (isUrl(doc[key]) ? doc[key] : undefined);
    const optionalList = (key: string) => (isStringArray(doc[key]) ? doc[key] : undefined);
    const metadata: OidcMetadata = {
      issuer: this.issuer,
      authorization_endpoint: doc.authorization_endpoint as string,
      token_endpoint: doc.token_endpoint as string,
      jwks_uri: doc.jwks_uri as string,
      userinfo_endpoint: optionalUrl('userinfo_endpoint'),
      code_challenge_methods_supported: optionalList('code_challenge_methods_supported'),
      id_token_signing_alg_values_supported: optionalList('id_token_signing_alg_values_supported'),
      authorization_response_iss_parameter_supported: doc.authorization_response_iss_parameter_supported === true,
      registration_endpoint: optionalUrl('registration_endpoint'),
    };
    const keys =
      previous && previous.metadata.jwks_uri === metadata.jwks_uri ? previous.keys : this.remoteKeys(metadata.jwks_uri);
    this.discovered = { metadata, keys, refreshAt: this.options.clock.now() + METADATA_TTL_MS };
    return this.discovered;
  }

  private checked(err?: unknown): void {
    const checkedAt = this.options.clock.now();
    this.lastCheck = err
      ? { status: 'degraded', discovery: 'failed', checkedAt, error: upstreamText((err as Error)?.message, 200) }
      : { status: 'up', discovery: 'ok', checkedAt };
  }

  override status(): UpstreamStatus {
    return { ...this.lastCheck };
  }

  override probe(minIntervalMs = 10_000): Promise<UpstreamStatus> {
    const { checkedAt } = this.lastCheck;
    const elapsed = checkedAt === undefined ? Infinity : this.options.clock.now() - checkedAt;
    // A clock set back counts as due.
    if (elapsed >= 0 && elapsed < minIntervalMs) {
      return Promise.resolve(this.status());
    }
    this.probing ??= this.check().finally(() => (this.probing = undefined));
    return this.probing;
  }

  /** Discovery fetched again and the JWKS fetched: both must answer and parse. */
  private async check(): Promise<UpstreamStatus> {
    try {
      const found = await this.fetchMetadata(this.discovered);
      const url = found.metadata.jwks_uri;
      const answer = await callUpstream(this.caller, 'jwks_uri', url, { headers: { accept: 'application/json' } });
      if (answer.status !== 200) {
        throw new UpstreamError(
          'unavailable',
          `${this.caller.label}: jwks_uri ${safeUrl(url)} answered HTTP ${answer.status}`,
        );
      }
      const jwks = jsonBody(this.caller, 'jwks_uri', url, answer) as { keys?: unknown } | null;
      if (!Array.isArray(jwks?.keys)) {
        throw new UpstreamError(
          'unavailable',
          `${this.caller.label}: jwks_uri ${safeUrl(url)} did not serve a JWK Set`,
        );
      }
      this.checked();
    } catch (err) {
      this.checked(err);
    }
    return this.status();
  }

  protected override async checkRefreshedIdToken(idToken: string, clientId: string): Promise<void> {
    const { metadata, keys } = await this.discover();
    await this.verifyIdToken(idToken, metadata, keys, undefined, clientId);
  }

  /** jose's remote JWK Set, fetched through callUpstream (deadline, size limit, messages). */
  private remoteKeys(jwksUri: string): JWTVerifyGetKey {
    const fetchKeys = async (url: string, init: RequestInit): Promise<Response> => {
      const answer = await callUpstream(this.caller, 'jwks_uri', url, init);
      if (answer.status !== 200) {
        throw new UpstreamError(
          'unavailable',
          `${this.caller.label}: jwks_uri ${safeUrl(url)} answered HTTP ${answer.status}`,
        );
      }
      jsonBody(this.caller, 'jwks_uri', url, answer);
      return new Response(answer.text, { status: 200, headers: { 'content-type': 'application/json' } });
    };
    return createRemoteJWKSet(new URL(jwksUri), {
      timeoutDuration: this.settings.timeoutMs,
      [customFetch]: fetchKeys,
    });
  }

  protected async endpoints(): Promise<Endpoints> {
    const { metadata } = await this.discover();
    const methods = metadata.code_challenge_methods_supported;
    return {
      authorizationEndpoint: metadata.authorization_endpoint,
      tokenEndpoint: metadata.token_endpoint,
      issuer: metadata.issuer,
      issParameterSupported: metadata.authorization_response_iss_parameter_supported === true,
      // Absent: sent anyway (a server without PKCE ignores it); listed without S256: not sent (never `plain`).
      pkce: methods === undefined || methods.includes('S256'),
      ...(metadata.registration_endpoint ? { registrationEndpoint: metadata.registration_endpoint } : {}),
    };
  }

  protected override requestParams(nonce: string): Record<string, string> {
    return { nonce };
  }

  protected async identify(
    tokens: UpstreamTokens,
    pending: { nonce: string; clientId: string },
  ): Promise<Omit<UpstreamIdentity, 'upstreamId' | 'issuer'>> {
    const label = this.caller.label;
    if (!tokens.idToken) throw new UpstreamError('invalid_response', `${label}: the token response has no id_token`);
    const { metadata, keys } = await this.discover();
    const claims = await this.verifyIdToken(tokens.idToken, metadata, keys, pending.nonce, pending.clientId);
    const subject = claims.sub!;
    let email = asString(claims.email);
    let emailVerified = asBoolean(claims.email_verified);
    let name = asString(claims.name);
    if (this.settings.userinfo && metadata.userinfo_endpoint && (email === undefined || name === undefined)) {
      const info = await this.getWithToken('userinfo endpoint', metadata.userinfo_endpoint, tokens);
      const where = `${label}: userinfo endpoint ${safeUrl(metadata.userinfo_endpoint)}`;
      if (typeof info !== 'object' || info === null || Array.isArray(info)) {
        throw new UpstreamError('invalid_response', `${where} answered JSON that is not an object`);
      }
      const record = info as Record<string, unknown>;
      // OpenID Connect Core §5.3.4: a userinfo response about someone else is not used.
      if (record.sub !== subject) {
        throw new UpstreamError('invalid_response', `${where} answered for another subject than the ID token's`);
      }
      if (email === undefined) {
        email = asString(record.email);
        emailVerified = asBoolean(record.email_verified);
      }
      name ??= asString(record.name);
    }
    return {
      subject,
      ...(email !== undefined ? { email } : {}),
      ...(email !== undefined && emailVerified !== undefined ? { emailVerified } : {}),
      ...(name !== undefined ? { name } : {}),
    };
  }

  private async verifyIdToken(
    idToken: string,
    metadata: OidcMetadata,
    keys: JWTVerifyGetKey,
    /** Undefined for a refresh response (OpenID Connect Core §12.2: no nonce asked for then). */
    nonce: string | undefined,
    clientId: string,
  ): Promise<JWTPayload> {
    const label = this.caller.label;
    const advertised = metadata.id_token_signing_alg_values_supported;
    const algorithms = advertised ? advertised.filter((alg) => ASYMMETRIC_ALGS.has(alg)) : ['RS256'];
    if (algorithms.length === 0) {
      throw new UpstreamError('invalid_response', `${label}: the upstream signs ID tokens with no supported algorithm`);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, keys, {
        issuer: [metadata.issuer, ...this.settings.alternateIdTokenIssuers],
        audience: clientId,
        algorithms,
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: new Date(this.options.clock.now()),
        requiredClaims: ['sub', 'iat', 'exp'],
      }));
    } catch (err) {
      throw idTokenError(label, err);
    }
    const bad = (what: string) => new UpstreamError('invalid_response', `${label}: the ID token ${what}`);
    if (typeof payload.sub !== 'string' || payload.sub === '') throw bad('has no valid sub');
    if (typeof payload.iat !== 'number' || payload.iat > this.options.clock.now() / 1000 + CLOCK_TOLERANCE_S) {
      throw bad('is issued in the future (iat)');
    }
    const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    // OpenID Connect Core §3.1.3.7 (and the azp errata): several audiences need an azp, and an azp must be us.
    if (payload.azp !== undefined || audiences.length > 1) {
      if (typeof payload.azp !== 'string' || payload.azp !== clientId) {
        throw bad('names another authorized party (azp)');
      }
    }
    if (nonce !== undefined && (typeof payload.nonce !== 'string' || !safeEqual(payload.nonce, nonce))) {
      throw bad('nonce is not the one this sign-in sent');
    }
    return payload;
  }
}

/** A jose failure of ID token verification as an UpstreamError (fetch failures of the JWKS pass through). */
function idTokenError(label: string, err: unknown): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const say = (failure: 'invalid_response' | 'unavailable', what: string) =>
    new UpstreamError(failure, `${label}: ${what}`, { cause: err });
  if (err instanceof errors.JWKSTimeout) return say('unavailable', 'the JWKS did not arrive in time');
  if (err instanceof errors.JWKSInvalid) return say('unavailable', 'jwks_uri did not serve a JWK Set');
  if (err instanceof errors.JWKSNoMatchingKey) {
    return say('invalid_response', "no key of the upstream's JWKS matches the ID token (signed by another key?)");
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return say('invalid_response', "the ID token's signature does not verify with the upstream's JWKS");
  }
  if (err instanceof errors.JOSEAlgNotAllowed)
    return say('invalid_response', 'the ID token is signed with an algorithm not allowed');
  if (err instanceof errors.JWTExpired) return say('invalid_response', 'the ID token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    return say('invalid_response', `the ID token's ${err.claim} claim is not valid (${err.reason})`);
  }
  if (err instanceof errors.JOSEError) return say('invalid_response', `the ID token is not valid (${err.code})`);
  return say('unavailable', `the ID token could not be verified (${upstreamText((err as Error)?.message, 120)})`);
}

class OAuth2Upstream extends UpstreamBase {
  constructor(
    protected override readonly settings: ResolvedOAuth2Upstream,
    secret: string,
    options: UpstreamProviderOptions,
  ) {
    super(settings, secret, options);
  }

  protected endpoints(): Promise<Endpoints> {
    return Promise.resolve({
      authorizationEndpoint: this.settings.authorizationEndpoint,
      tokenEndpoint: this.settings.tokenEndpoint,
      issuer: this.settings.issuer,
      issParameterSupported: false,
      // No metadata to say otherwise; a server without PKCE ignores it (GitHub supports it).
      pkce: true,
    });
  }

  protected async identify(tokens: UpstreamTokens): Promise<Omit<UpstreamIdentity, 'upstreamId' | 'issuer'>> {
    const { claims, userinfoEndpoint, emailsEndpoint, userinfoHeaders } = this.settings;
    const where = `${this.caller.label}: user endpoint ${safeUrl(userinfoEndpoint)}`;
    const user = await this.getWithToken('user endpoint', userinfoEndpoint, tokens, userinfoHeaders);
    if (typeof user !== 'object' || user === null || Array.isArray(user)) {
      throw new UpstreamError('invalid_response', `${where} answered JSON that is not an object`);
    }
    const record = user as Record<string, unknown>;
    const first = (names: string[]) => names.map((n) => record[n]).find((v) => v !== undefined && v !== null);
    const rawSubject = first(claims.subject);
    // GitHub's id is a number; a stable subject is its decimal string.
    const subject =
      typeof rawSubject === 'number' && Number.isSafeInteger(rawSubject) ? String(rawSubject) : asString(rawSubject);
    if (subject === undefined) {
      throw new UpstreamError('invalid_response', `${where} answered no subject (${claims.subject.join(' or ')})`);
    }
    let email = asString(first(claims.email));
    let emailVerified = email !== undefined ? asBoolean(first(claims.emailVerified)) : undefined;
    if (emailsEndpoint) {
      const primary = await this.primaryVerifiedEmail(emailsEndpoint, tokens, userinfoHeaders);
      if (primary !== undefined) {
        email = primary;
        emailVerified = true;
      } else if (email !== undefined) {
        emailVerified = false;
      }
    }
    const name = asString(first(claims.name));
    return {
      subject,
      ...(email !== undefined ? { email } : {}),
      ...(emailVerified !== undefined ? { emailVerified } : {}),
      ...(name !== undefined ? { name } : {}),
    };
  }

  /** GitHub's /user/emails: the address marked primary and verified, if any. */
  private async primaryVerifiedEmail(
    url: string,
    tokens: UpstreamTokens,
    headers: Record<string, string>,
  ): Promise<string | undefined> {
    const list = await this.getWithToken('emails endpoint', url, tokens, headers);
    if (!Array.isArray(list)) {
      throw new UpstreamError(
        'invalid_response',
        `${this.caller.label}: emails endpoint ${safeUrl(url)} answered JSON that is not a list`,
      );
    }
    const entry = (list as unknown[]).find(
      (e): e is { email: string } =>
        typeof e === 'object' &&
        e !== null &&
        (e as Record<string, unknown>).primary === true &&
        (e as Record<string, unknown>).verified === true &&
        typeof (e as Record<string, unknown>).email === 'string',
    );
    return entry?.email;
  }
}

/** One configured upstream, ready to use. Throws ConfigError when its client secret cannot be read. */
export function createUpstreamProvider(config: UpstreamConfig, options: UpstreamProviderOptions): UpstreamProvider {
  const settings = resolveUpstream(config);
  const secret = readSecret(settings.id, settings.secret, options.env ?? process.env);
  if (settings.secret && 'inline' in settings.secret) {
    options.logger.warn(
      { upstream: settings.id },
      'upstream client secret is inline in the config; use clientSecretEnv or clientSecretFile',
    );
  }
  const urls =
    settings.type === 'oidc'
      ? [settings.issuer]
      : [settings.authorizationEndpoint, settings.tokenEndpoint, settings.userinfoEndpoint];
  if (urls.some((u) => new URL(u).protocol === 'http:' && !isLoopback(u))) {
    options.logger.warn(
      { upstream: settings.id },
      'upstream is reached over plain http: its tokens and the client secret cross the network in clear',
    );
  }
  const provider =
    settings.type === 'oidc'
      ? new OidcUpstream(settings, secret, options)
      : new OAuth2Upstream(settings, secret, options);
  return provider;
}

/** The configured upstreams by id. */
export function createUpstreamProviders(
  configs: readonly UpstreamConfig[],
  options: UpstreamProviderOptions,
): Map<string, UpstreamProvider> {
  const out = new Map<string, UpstreamProvider>();
  for (const config of configs) {
    if (out.has(config.id)) throw new ConfigError(`invalid configuration:\n  upstreams: duplicate id "${config.id}"`);
    out.set(config.id, createUpstreamProvider(config, options));
  }
  return out;
}

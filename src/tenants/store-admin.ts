/**
 * The admin operations on one scope's store (the deployment's, or a tenant's view): clients, users, grants, consents
 * and signing keys. What the admin API (http/routes/admin.ts), the CLI (`gatehouse client|user|grant|consent|key`)
 * and the embedded store's control socket (cli/control.ts) all run, so they behave alike. Every input is checked
 * with zod here; a refusal is an {@link AdminError} with the HTTP status the admin API answers. Results are plain
 * JSON (snake_case), never holding a secret except the one a create or rotate hands out once.
 */
import { z } from 'zod';
import type { Deps } from '../context.js';
import type { AuditEvent, AuditRequestContext, Auditor } from '../core/audit.js';
import type { Clock } from '../core/clock.js';
import type { Config } from '../config/schema.js';
import { newClientSecret, sealClientSecret } from '../core/client-auth.js';
import { clientMetadataResponse, parseRegistrationRequest, validateClientMetadata } from '../core/client-metadata.js';
import { randomId } from '../core/crypto.js';
import { generateSigningKey, openPrivateJwk, sealSigningKey } from '../core/keys.js';
import { hashPassword } from '../core/password.js';
import { passwordProblem, type PasswordPolicy } from '../core/password-policy.js';
import type { Sealer } from '../core/sealing.js';
import { ADMIN_SCOPE } from '../core/scope.js';
import { clientRulesOf } from '../grants/index.js';
import { hasSecret } from '../endpoints/registration-dedupe.js';
import { InvalidCursorError, MAX_PAGE_LIMIT, type Page, type Storage } from '../model/ports.js';
import { OAuthError } from '../model/errors.js';
import type { ClientRecord, ConsentRecord, GrantRecord, SigningKeyRecord, UserRecord } from '../model/records.js';

/** A refused admin operation, with the HTTP status and error code the admin API answers. */
export class AdminError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    readonly code: 'invalid_request' | 'not_found' | 'conflict' | 'invalid_client_metadata' | 'invalid_redirect_uri',
    message: string,
  ) {
    super(message);
    this.name = 'AdminError';
  }
}

export interface StoreAdminOptions {
  /** The scope's store: the deployment's, or storage.forTenant(id). */
  storage: Storage;
  /** Where the changes are reported (client, key, grant and consent events), and as whose: the API or the CLI. */
  audit?: Pick<Auditor, 'emit'>;
  actor?: 'admin' | 'cli';
  /** The admin API request making the changes (its id, address and user agent go on their events). */
  context?: AuditRequestContext;
  /** The scope's effective config (a tenant's is the deployment's with its settings applied). */
  config: Config;
  clock: Clock;
  /** The client-secret pepper (keyed hash of server-generated secrets). */
  pepper: string;
  sealer: Sealer | undefined;
  passwordPolicy: PasswordPolicy;
  /** Scopes the server knows (a client's allow-list is narrowed to them). */
  scopesSupported: readonly string[];
  /** Called after a client changed or went (this process drops its cached copy). */
  clientChanged?: (clientId: string) => void;
  /** Called after the key set changed (this process reloads it). */
  keysChanged?: () => Promise<void>;
}

const limit = z.coerce.number().int().min(1).max(MAX_PAGE_LIMIT).optional();
const cursor = z.string().min(1).max(2000).optional();
const id = z.string().min(1).max(1000);

const clientListQuery = z
  .object({
    limit,
    cursor,
    client_id_prefix: z.string().max(200).optional(),
    name_prefix: z.string().max(200).optional(),
  })
  .strict()
  .refine((q) => q.client_id_prefix === undefined || q.name_prefix === undefined, {
    message: 'client_id_prefix and name_prefix cannot be combined',
  });
const userListQuery = z.object({ limit, cursor, username_prefix: z.string().max(200).optional() }).strict();
const byOwnerQuery = z
  .object({ limit, cursor, user_id: id.optional(), client_id: id.optional() })
  .strict()
  .refine((q) => (q.user_id === undefined) !== (q.client_id === undefined), {
    message: 'exactly one of user_id or client_id is required',
  });
const newUser = z
  .object({
    username: z.string().min(1).max(200),
    password: z.string().min(1).max(1024),
    email: z.string().email().max(320).optional(),
    name: z.string().max(200).optional(),
  })
  .strict();
const passwordBody = z.object({ password: z.string().min(1).max(1024) }).strict();
const rotateKeyBody = z.object({ alg: z.enum(['ES256', 'RS256', 'EdDSA']).optional() }).strict();

/** Parses `input` with `schema`; a mismatch is a 400 naming the first problem. */
function parse<T>(schema: z.ZodType<T>, input: unknown): T {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const where = issue.path.join('.');
  throw new AdminError(400, 'invalid_request', where ? `${where}: ${issue.message}` : issue.message);
}

/** Runs a store listing; a cursor it did not make is a 400. */
async function paged<T>(list: () => Promise<Page<T>>): Promise<Page<T>> {
  try {
    return await list();
  } catch (err) {
    if (err instanceof InvalidCursorError)
      throw new AdminError(400, 'invalid_request', 'cursor: not a cursor of this listing');
    throw err;
  }
}

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

/** A client as the admin API shows it: RFC 7591 metadata plus where it came from; never a secret or its hash. */
export function clientView(client: ClientRecord): Record<string, unknown> {
  return {
    ...clientMetadataResponse(client),
    source: client.source,
    has_secret: client.clientSecretHash !== undefined,
    created_at: iso(client.createdAt),
    updated_at: iso(client.updatedAt),
  };
}

/** A user without their password hash or second-factor secrets (only whether they have them). */
export function userView(user: UserRecord): Record<string, unknown> {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    email_verified: user.emailVerified,
    name: user.name,
    disabled: user.disabled === true,
    has_password: user.passwordHash !== '',
    mfa_required: user.mfaRequired === true,
    totp: user.totp !== undefined,
    passkeys: user.passkeys?.length ?? 0,
    created_at: iso(user.createdAt),
    updated_at: iso(user.updatedAt),
  };
}

export function grantView(grant: GrantRecord): Record<string, unknown> {
  return {
    id: grant.id,
    user_id: grant.userId,
    client_id: grant.clientId,
    scope: grant.scope.join(' '),
    resource: grant.resource,
    created_at: iso(grant.createdAt),
    last_used_at: iso(grant.lastUsedAt ?? grant.createdAt),
    expires_at: iso(grant.expiresAt),
    revoked_at: iso(grant.revokedAt),
  };
}

export function consentView(consent: ConsentRecord): Record<string, unknown> {
  return {
    user_id: consent.userId,
    client_id: consent.clientId,
    scope: consent.scope.join(' '),
    resource: consent.resource,
    created_at: iso(consent.createdAt),
    expires_at: iso(consent.expiresAt),
  };
}

export function keyView(key: SigningKeyRecord): Record<string, unknown> {
  return {
    kid: key.kid,
    alg: key.alg,
    status: key.status,
    created_at: iso(key.createdAt),
    unpublished_after: iso(key.expiresAt),
  };
}

/** A StoreAdmin over one issuer scope's deps (the request's, in the admin API). */
export function storeAdminFor(
  deps: Pick<
    Deps,
    | 'storage'
    | 'config'
    | 'clock'
    | 'pepper'
    | 'sealer'
    | 'passwordPolicy'
    | 'scopesSupported'
    | 'clients'
    | 'keys'
    | 'audit'
  >,
  actor: 'admin' | 'cli' = 'admin',
  context?: AuditRequestContext,
): StoreAdmin {
  return new StoreAdmin({
    storage: deps.storage,
    config: deps.config,
    clock: deps.clock,
    pepper: deps.pepper,
    sealer: deps.sealer,
    passwordPolicy: deps.passwordPolicy,
    scopesSupported: deps.scopesSupported,
    clientChanged: (clientId) => deps.clients.forget?.(clientId),
    keysChanged: () => deps.keys.refresh(),
    audit: deps.audit,
    actor,
    context,
  });
}

export class StoreAdmin {
  constructor(private readonly o: StoreAdminOptions) {}

  /** Reports a change as an audit event, with the request that made it (if any). */
  private report(event: AuditEvent): void {
    this.o.audit?.emit(event, this.o.context);
  }

  /** Who the audit events name as the source of a change. */
  private get source(): 'admin' | 'cli' {
    return this.o.actor ?? 'admin';
  }

  private get storage(): Storage {
    return this.o.storage;
  }

  // ---- clients ----

  async listClients(query: unknown): Promise<{ clients: Record<string, unknown>[]; next_cursor?: string }> {
    const q = parse(clientListQuery, query);
    const page = await paged(() =>
      this.storage.pageClients({
        limit: q.limit,
        cursor: q.cursor,
        idPrefix: q.client_id_prefix,
        namePrefix: q.name_prefix,
      }),
    );
    return { clients: page.items.map(clientView), ...(page.nextCursor && { next_cursor: page.nextCursor }) };
  }

  private async client(clientId: string): Promise<ClientRecord> {
    const client = await this.storage.getClient(parse(id, clientId));
    if (!client) throw new AdminError(404, 'not_found', 'no such client');
    return client;
  }

  async getClient(clientId: string): Promise<Record<string, unknown>> {
    return clientView(await this.client(clientId));
  }

  /** RFC 7591 metadata in, validated as registration does; the secret (if any) is in the answer once. */
  private metadataOf(body: unknown): ReturnType<typeof validateClientMetadata> {
    try {
      return validateClientMetadata(
        parseRegistrationRequest(body),
        this.o.scopesSupported,
        this.o.config.strictScopes,
        clientRulesOf(this.o.config),
        { clientSecretJwt: this.o.sealer !== undefined },
      );
    } catch (err) {
      if (err instanceof OAuthError) {
        const code = err.code === 'invalid_redirect_uri' ? 'invalid_redirect_uri' : 'invalid_client_metadata';
        throw new AdminError(400, code, err.description);
      }
      throw err;
    }
  }

  async createClient(body: unknown): Promise<Record<string, unknown>> {
    const { client_id: wanted, ...metadataBody } = (body ?? {}) as Record<string, unknown>;
    const clientId = wanted === undefined ? randomId() : parse(z.string().regex(/^[A-Za-z0-9._~-]{1,128}$/), wanted);
    const metadata = this.metadataOf(metadataBody);
    if (await this.storage.getClient(clientId)) throw new AdminError(409, 'conflict', 'a client with that id exists');
    const now = this.o.clock.now();
    const secret = hasSecret(metadata.tokenEndpointAuthMethod) ? newClientSecret(this.o.pepper) : undefined;
    const client: ClientRecord = {
      ...metadata,
      clientId,
      clientSecretHash: secret?.hash,
      clientSecretSealed: secret && this.sealedSecret(metadata.tokenEndpointAuthMethod, clientId, secret.secret),
      source: 'admin',
      createdAt: now,
      updatedAt: now,
      clientSecretExpiresAt: 0,
    };
    await this.storage.saveClient(dropUndefined(client));
    this.report({
      type: 'client.registered',
      clientId,
      source: this.source,
      clientName: client.clientName,
      redirectUris: client.redirectUris,
      grantTypes: client.grantTypes,
      authMethod: client.tokenEndpointAuthMethod,
    });
    return { ...clientView(client), ...(secret && { client_secret: secret.secret }) };
  }

  /** Replaces the client's metadata (the body is the full RFC 7591 metadata); config-file clients are refused. */
  async updateClient(clientId: string, body: unknown): Promise<Record<string, unknown>> {
    const current = this.changeable(await this.client(clientId));
    const metadata = this.metadataOf(body);
    let { clientSecretHash, clientSecretSealed } = current;
    let secret: string | undefined;
    if (!hasSecret(metadata.tokenEndpointAuthMethod)) clientSecretHash = clientSecretSealed = undefined;
    else if (!clientSecretHash) {
      const fresh = newClientSecret(this.o.pepper);
      secret = fresh.secret;
      clientSecretHash = fresh.hash;
      clientSecretSealed = this.sealedSecret(metadata.tokenEndpointAuthMethod, current.clientId, fresh.secret);
    } else if (metadata.tokenEndpointAuthMethod === 'client_secret_jwt' && !clientSecretSealed) {
      throw new AdminError(409, 'conflict', 'switching to client_secret_jwt needs a new secret: rotate it first');
    }
    const client: ClientRecord = dropUndefined({
      ...metadata,
      clientId: current.clientId,
      clientSecretHash,
      clientSecretSealed,
      registrationAccessTokenHash: current.registrationAccessTokenHash,
      source: current.source,
      createdAt: current.createdAt,
      updatedAt: this.o.clock.now(),
      clientSecretExpiresAt: current.clientSecretExpiresAt,
    });
    await this.storage.saveClient(client);
    this.o.clientChanged?.(client.clientId);
    this.report({
      type: 'client.updated',
      clientId: client.clientId,
      source: this.source,
      ...(secret && { secretRotated: true }),
    });
    return { ...clientView(client), ...(secret && { client_secret: secret }) };
  }

  async deleteClient(clientId: string): Promise<{ client_id: string; deleted: true }> {
    const client = this.changeable(await this.client(clientId));
    await this.storage.deleteClient(client.clientId);
    this.o.clientChanged?.(client.clientId);
    this.report({ type: 'client.deleted', clientId: client.clientId, source: this.source });
    return { client_id: client.clientId, deleted: true };
  }

  /** A new server-generated secret, stored as a keyed hash; the old one stops working at once. */
  async rotateClientSecret(clientId: string): Promise<Record<string, unknown>> {
    const current = this.changeable(await this.client(clientId));
    if (!hasSecret(current.tokenEndpointAuthMethod)) {
      throw new AdminError(409, 'conflict', `a ${current.tokenEndpointAuthMethod} client has no secret`);
    }
    const secret = newClientSecret(this.o.pepper);
    const client: ClientRecord = dropUndefined({
      ...current,
      clientSecretHash: secret.hash,
      clientSecretSealed: this.sealedSecret(current.tokenEndpointAuthMethod, current.clientId, secret.secret),
      clientSecretExpiresAt: 0,
      updatedAt: this.o.clock.now(),
    });
    await this.storage.saveClient(client);
    this.o.clientChanged?.(client.clientId);
    this.report({ type: 'client.updated', clientId: client.clientId, source: this.source, secretRotated: true });
    return { ...clientView(client), client_secret: secret.secret };
  }

  private sealedSecret(method: ClientRecord['tokenEndpointAuthMethod'], clientId: string, secret: string) {
    return method === 'client_secret_jwt' && this.o.sealer
      ? sealClientSecret(this.o.sealer, clientId, secret)
      : undefined;
  }

  /** Config-file clients are the file's: changed there (the server writes them again at every start). */
  private changeable(client: ClientRecord): ClientRecord {
    if (client.source === 'static') {
      throw new AdminError(409, 'conflict', 'this client is declared in the config file: change it there');
    }
    return client;
  }

  // ---- users ----

  async listUsers(query: unknown): Promise<{ users: Record<string, unknown>[]; next_cursor?: string }> {
    const q = parse(userListQuery, query);
    const page = await paged(() =>
      this.storage.pageUsers({ limit: q.limit, cursor: q.cursor, usernamePrefix: q.username_prefix }),
    );
    return { users: page.items.map(userView), ...(page.nextCursor && { next_cursor: page.nextCursor }) };
  }

  private async user(userId: string): Promise<UserRecord> {
    const user = await this.storage.getUser(parse(id, userId));
    if (!user) throw new AdminError(404, 'not_found', 'no such user');
    return user;
  }

  /** The user's id for a username (the CLI names users by username). */
  async userIdOf(username: string): Promise<string> {
    const user = await this.storage.getUserByUsername(username);
    if (!user) throw new AdminError(404, 'not_found', `no user named ${username}`);
    return user.id;
  }

  async getUser(userId: string): Promise<Record<string, unknown>> {
    return userView(await this.user(userId));
  }

  private async passwordHash(password: string, username: string): Promise<string> {
    const problem = passwordProblem(password, this.o.passwordPolicy, username);
    if (problem) throw new AdminError(400, 'invalid_request', `password refused: ${problem}`);
    return hashPassword(password, this.o.config.passwordHashing.log2N);
  }

  async createUser(body: unknown): Promise<Record<string, unknown>> {
    const input = parse(newUser, body);
    if (await this.storage.getUserByUsername(input.username)) {
      throw new AdminError(409, 'conflict', 'that username is taken');
    }
    const now = this.o.clock.now();
    const user: UserRecord = dropUndefined({
      id: randomId(),
      username: input.username,
      passwordHash: await this.passwordHash(input.password, input.username),
      email: input.email,
      emailVerified: input.email === undefined ? undefined : false,
      name: input.name,
      createdAt: now,
      updatedAt: now,
    });
    try {
      await this.storage.saveUser(user);
    } catch (err) {
      // A concurrent create took the username between the check and the write.
      if (await this.storage.getUserByUsername(input.username)) {
        throw new AdminError(409, 'conflict', 'that username is taken');
      }
      throw err;
    }
    return userView(user);
  }

  /** Sets a new password (held to passwordPolicy) and ends every session signed in with the old one. */
  async setPassword(userId: string, body: unknown): Promise<Record<string, unknown>> {
    const user = await this.user(userId);
    const { password } = parse(passwordBody, body);
    const updated = {
      ...user,
      passwordHash: await this.passwordHash(password, user.username),
      updatedAt: this.o.clock.now(),
    };
    await this.storage.saveUser(updated);
    const sessionsEnded = await this.storage.deleteSessionsOf(user.id);
    return { ...userView(updated), sessions_ended: sessionsEnded };
  }

  /** Disables the user: no sign-in from now on, every grant revoked, every session ended. */
  async disableUser(userId: string): Promise<Record<string, unknown>> {
    const user = await this.user(userId);
    const updated = { ...user, disabled: true, updatedAt: this.o.clock.now() };
    await this.storage.saveUser(updated);
    const grantsRevoked = await this.revokeAllGrantsOf(user.id);
    const sessionsEnded = await this.storage.deleteSessionsOf(user.id);
    return { ...userView(updated), grants_revoked: grantsRevoked, sessions_ended: sessionsEnded };
  }

  async enableUser(userId: string): Promise<Record<string, unknown>> {
    const { disabled: _disabled, ...user } = await this.user(userId);
    const updated = { ...user, updatedAt: this.o.clock.now() };
    await this.storage.saveUser(updated);
    return userView(updated);
  }

  /** Deletes the user: their grants revoked, sessions and consents gone (the store's deleteUser cascade). */
  async deleteUser(userId: string): Promise<{ id: string; deleted: true }> {
    const user = await this.user(userId);
    await this.storage.deleteUser(user.id);
    return { id: user.id, deleted: true };
  }

  private async revokeAllGrantsOf(userId: string): Promise<number> {
    const now = this.o.clock.now();
    let revoked = 0;
    let next: string | undefined;
    do {
      const page = await this.storage.listGrantsOfUser(userId, { limit: MAX_PAGE_LIMIT, cursor: next });
      for (const grant of page.items) {
        if (grant.revokedAt === undefined && (await this.storage.revokeGrant(grant.id, now))) revoked++;
      }
      next = page.nextCursor;
    } while (next !== undefined);
    return revoked;
  }

  // ---- grants and consents ----

  async listGrants(query: unknown): Promise<{ grants: Record<string, unknown>[]; next_cursor?: string }> {
    const q = parse(byOwnerQuery, query);
    const page = await paged(() =>
      q.user_id !== undefined
        ? this.storage.listGrantsOfUser(q.user_id, q)
        : this.storage.listGrantsOfClient(q.client_id!, q),
    );
    return { grants: page.items.map(grantView), ...(page.nextCursor && { next_cursor: page.nextCursor }) };
  }

  /** Revokes one grant (its refresh tokens and access tokens with it). */
  async revokeGrant(grantId: string): Promise<Record<string, unknown>> {
    const grant = await this.storage.getGrant(parse(id, grantId));
    if (!grant) throw new AdminError(404, 'not_found', 'no such grant');
    await this.storage.revokeGrant(grant.id, this.o.clock.now());
    this.report({
      type: 'grant.revoked',
      grantId: grant.id,
      reason: 'admin',
      clientId: grant.clientId,
      subject: grant.userId,
    });
    return grantView((await this.storage.getGrant(grant.id)) ?? grant);
  }

  async listConsents(query: unknown): Promise<{ consents: Record<string, unknown>[]; next_cursor?: string }> {
    const q = parse(byOwnerQuery, query);
    const page = await paged(() =>
      q.user_id !== undefined
        ? this.storage.listConsentsOfUser(q.user_id, q)
        : this.storage.listConsentsOfClient(q.client_id!, q),
    );
    return { consents: page.items.map(consentView), ...(page.nextCursor && { next_cursor: page.nextCursor }) };
  }

  /** Withdraws a consent: it goes, and every grant of that (user, client) pair is revoked with it. */
  async revokeConsent(userId: string, clientId: string): Promise<Record<string, unknown>> {
    const [user, client] = [parse(id, userId), parse(id, clientId)];
    const consent = await this.storage.getConsent(user, client);
    const grantsRevoked = await this.storage.revokeGrantsFor(user, client, this.o.clock.now());
    if (!consent && grantsRevoked === 0) throw new AdminError(404, 'not_found', 'no such consent');
    await this.storage.deleteConsent(user, client);
    if (consent) this.report({ type: 'consent.revoked', clientId: client, subject: user });
    return { user_id: user, client_id: client, grants_revoked: grantsRevoked };
  }

  // ---- signing keys ----

  async listKeys(): Promise<{ keys: Record<string, unknown>[] }> {
    return { keys: (await this.storage.listSigningKeys()).map(keyView) };
  }

  /** How long a retired key stays published: past the longest-lived token it signed, plus a margin. */
  private overlapMs(): number {
    const { tokens } = this.o.config;
    return Math.max(tokens.accessTokenTtl, tokens.idTokenTtl) * 1000 + 5 * 60_000;
  }

  /** Adds a new active key; the other active keys of its alg retire (published until their tokens expired). */
  async rotateKey(body: unknown): Promise<Record<string, unknown>> {
    const alg = parse(rotateKeyBody, body).alg ?? this.o.config.signing.alg;
    return this.addKey(alg);
  }

  /**
   * Retires an active key now: a new key of its alg takes over (rotation), and it stays published until its tokens
   * expired. A retired key is left as it is (409): it leaves the JWKS at its time.
   */
  async retireKey(kid: string): Promise<Record<string, unknown>> {
    const key = (await this.storage.listSigningKeys()).find((k) => k.kid === parse(id, kid));
    if (!key) throw new AdminError(404, 'not_found', 'no such signing key');
    if (key.status !== 'active') {
      throw new AdminError(
        409,
        'conflict',
        `key ${key.kid} is already retired (unpublished after ${iso(key.expiresAt)})`,
      );
    }
    const added = await this.addKey(key.alg);
    return { retired: key.kid, active: added };
  }

  private async addKey(alg: SigningKeyRecord['alg']): Promise<Record<string, unknown>> {
    const sealer = this.o.sealer;
    // Never add a key the servers could not open (or a clear one beside sealed ones): same encryptionKey.
    for (const existing of await this.storage.listSigningKeys()) {
      try {
        openPrivateJwk(existing, sealer);
      } catch {
        throw new AdminError(409, 'conflict', 'the stored keys cannot be opened with this encryptionKey');
      }
    }
    const previous = (await this.storage.listSigningKeys()).find((k) => k.alg === alg && k.status === 'active');
    const key = sealSigningKey(await generateSigningKey(alg, this.o.clock), sealer);
    await this.storage.rotateSigningKey(key, this.o.clock.now() + this.overlapMs());
    await this.o.keysChanged?.();
    this.report({
      type: 'key.rotated',
      kid: key.kid,
      alg,
      source: this.source,
      ...(previous && { previousKid: previous.kid }),
    });
    return keyView(key);
  }
}

/** Drops undefined properties, so records read back equal the ones saved. */
function dropUndefined<T extends object>(o: T): T {
  for (const key of Object.keys(o) as (keyof T)[]) if (o[key] === undefined) delete o[key];
  return o;
}

export { ADMIN_SCOPE };

/** The config-file clients of a scope allowed the admin scope: with none, only the admin token opens the API. */
export function adminClientsOf(config: Pick<Config, 'clients'>): string[] {
  return config.clients.filter((c) => (c.scope ?? '').split(' ').includes(ADMIN_SCOPE)).map((c) => c.client_id);
}

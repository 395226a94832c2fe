/**
 * Gatehouse as a dynamically registered client of an upstream (config `upstreams[].registration`, RFC 7591): it
 * registers itself on first use and keeps the credentials in the store (record kind `upstream_registration`, the
 * secret and the RFC 7592 registration access token sealed), keyed by (upstream issuer, upstream id, redirect_uri,
 * sorted scopes), until `client_secret_expires_at`. One registration at a time across replicas: a lease
 * (`firstUse('upstream-register:<key>:<previous generation>:<bucket>')`), the winner re-checks the record before
 * registering, the others wait for the record. A dropped registration leaves a tombstone naming its generation, so
 * the round after it has a lease key of its own. `invalid_client` at the token endpoint drops the record (dropRegistration) and the next
 * sign-in registers again; the new generation voids the tokens obtained under the old one.
 */
import { readFileSync } from 'node:fs';
import type { Clock } from '../core/clock.js';
import { randomId, sha256 } from '../core/crypto.js';
import type { Sealer } from '../core/sealing.js';
import { ConfigError } from '../model/errors.js';
import type { ExpiringRecordStore, ReplayGuard } from '../model/ports.js';
import { RECORD_KINDS, recordsOf } from '../model/record-kinds.js';
import type { UpstreamRegistrationRecord } from '../model/records.js';
import { callUpstream, jsonObject, oauthErrorOf, safeUrl, upstreamText, type UpstreamCaller } from './http.js';
import type { ResolvedUpstream } from './presets.js';
import { UpstreamError } from './provider.js';

/** Where registrations are kept: the issuer's store and its sealer (encryptionKey is required with upstreams). */
export interface RegistrationStore {
  storage: ExpiringRecordStore & ReplayGuard;
  sealer: Sealer;
  /** Gatehouse's callback at the upstream, `<issuer>/upstream/callback`. */
  redirectUri: string;
}

export interface UpstreamCredentials {
  clientId: string;
  clientSecret: string;
  /** The registration's generation ('' for a configured client). */
  generation: string;
}

/** client_secret_expires_at 0 (never): kept this long. */
const NEVER_MS = 10 * 365 * 86_400_000;
/**
 * A registration is used until this long before its secret expires: a sign-in begun with it (its pending record
 * lives 10 minutes) completes with the same client.
 */
const SIGN_IN_MS = 10 * 60_000;
/** A tombstone is kept this long (after it, the next round's lease key is the first one's again). */
const TOMBSTONE_MS = 86_400_000;
/** A registration older than this is warned about (once per process): rotate it. */
const OLD_MS = 90 * 86_400_000;
/** How often a replica waiting for another's registration reads the record. */
const POLL_MS = 100;

const warnedOld = new Set<string>();

/** The record id of upstream `settings`' registration for `redirectUri`. */
export function registrationId(settings: ResolvedUpstream, redirectUri: string): string {
  const scopes = [...settings.scopes].sort().join(' ');
  return sha256(JSON.stringify([settings.issuer, settings.id, redirectUri, sha256(scopes).toString('hex')])).toString(
    'hex',
  );
}

const aad = (id: string, what: string) => `upstream-registration:${id}:${what}`;

function readInitialAccessToken(settings: ResolvedUpstream, env: NodeJS.ProcessEnv): string | undefined {
  const r = settings.registration;
  if (r?.initialAccessTokenEnv !== undefined) {
    const value = env[r.initialAccessTokenEnv];
    if (!value) {
      throw new ConfigError(
        `invalid configuration:\n  upstreams[${settings.id}].registration.initialAccessTokenEnv: environment variable ${r.initialAccessTokenEnv} is not set`,
      );
    }
    return value;
  }
  if (r?.initialAccessTokenFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(r.initialAccessTokenFile, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(
        `invalid configuration:\n  upstreams[${settings.id}].registration.initialAccessTokenFile: cannot read ${r.initialAccessTokenFile}: ${(err as Error).message}`,
      );
    }
    if (!text) {
      throw new ConfigError(
        `invalid configuration:\n  upstreams[${settings.id}].registration.initialAccessTokenFile: ${r.initialAccessTokenFile} is empty`,
      );
    }
    return text;
  }
  return undefined;
}

export interface RegistrationContext {
  settings: ResolvedUpstream;
  store: RegistrationStore;
  caller: UpstreamCaller;
  clock: Clock;
  logger: { warn(obj: object, msg?: string): void };
  /** Where `initialAccessTokenEnv` is read; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** The registration endpoint: configured, else the discovery document's. */
  endpoint: () => Promise<string | undefined>;
}

function opened(record: UpstreamRegistrationRecord, ctx: RegistrationContext): UpstreamCredentials {
  const { sealer } = ctx.store;
  const clientSecret =
    record.sealedClientSecret === ''
      ? ''
      : sealer.open(record.sealedClientSecret, aad(record.id, 'client_secret'), 'an upstream registration');
  if (ctx.clock.now() - record.issuedAt > OLD_MS && !warnedOld.has(record.generation)) {
    warnedOld.add(record.generation);
    ctx.logger.warn(
      { upstream: ctx.settings.id, issuedAt: new Date(record.issuedAt).toISOString() },
      'the registration of Gatehouse at this upstream is older than 90 days',
    );
  }
  return { clientId: record.clientId, clientSecret, generation: record.generation };
}

/** The stored registration's generation, without registering (undefined: none). */
export async function registrationGeneration(ctx: RegistrationContext): Promise<string | undefined> {
  const records = recordsOf(ctx.store.storage, RECORD_KINDS.upstreamRegistration);
  const record = await records.get(registrationId(ctx.settings, ctx.store.redirectUri));
  return record && !record.dropped ? record.generation : undefined;
}

/** The credentials of Gatehouse at the upstream: the stored registration, or a new one. Throws UpstreamError. */
export async function ensureRegistration(ctx: RegistrationContext): Promise<UpstreamCredentials> {
  const records = recordsOf(ctx.store.storage, RECORD_KINDS.upstreamRegistration);
  const id = registrationId(ctx.settings, ctx.store.redirectUri);
  const found = await records.get(id);
  if (found && !found.dropped) return opened(found, ctx);
  const previous = found?.generation ?? 'none';
  const leaseMs = Math.max(10_000, 3 * ctx.settings.timeoutMs);
  const now = ctx.clock.now();
  const bucket = Math.floor(now / leaseMs);
  if (await ctx.store.storage.firstUse(`upstream-register:${id}:${previous}:${bucket}`, now + leaseMs)) {
    // Another replica may have finished between our read and the lease.
    const again = await records.get(id);
    if (again && !again.dropped) return opened(again, ctx);
    return register(ctx, id);
  }
  // Counted in polls, not by the clock (an injected clock may stand still).
  for (let waited = 0; waited < leaseMs; waited += POLL_MS) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    const record = await records.get(id);
    if (record && !record.dropped) return opened(record, ctx);
    // That round ended with nothing kept (an already expired secret): the caller may try again.
    if (record && record.generation !== found?.generation) break;
  }
  throw new UpstreamError('unavailable', `${ctx.caller.label}: another replica's registration did not finish in time`);
}

/** Drops the registration of `generation` (the upstream answered invalid_client): the next use registers again. */
export async function dropRegistration(ctx: RegistrationContext, generation: string): Promise<void> {
  const records = recordsOf(ctx.store.storage, RECORD_KINDS.upstreamRegistration);
  const id = registrationId(ctx.settings, ctx.store.redirectUri);
  const record = await records.get(id);
  // Not a newer registration another replica already made.
  if (record?.generation === generation && !record.dropped) {
    await records.put(tombstone(record, ctx.clock.now()));
    ctx.logger.warn(
      { upstream: ctx.settings.id },
      'the upstream no longer knows Gatehouse as a client: registering again',
    );
  }
}

const tombstone = (record: UpstreamRegistrationRecord, now: number): UpstreamRegistrationRecord => ({
  id: record.id,
  clientId: '',
  sealedClientSecret: '',
  issuedAt: record.issuedAt,
  expiresAt: now + TOMBSTONE_MS,
  generation: record.generation,
  dropped: true,
});

const asString = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

async function register(ctx: RegistrationContext, id: string): Promise<UpstreamCredentials> {
  const { settings, caller } = ctx;
  const url = settings.registration?.endpoint ?? (await ctx.endpoint());
  if (!url) {
    throw new UpstreamError(
      'unavailable',
      `${caller.label}: no registration endpoint (not configured, none in the discovery document)`,
    );
  }
  const initialAccessToken = readInitialAccessToken(settings, ctx.env ?? process.env);
  const metadata: Record<string, unknown> = {
    redirect_uris: [ctx.store.redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: settings.tokenEndpointAuthMethod,
    application_type: 'web',
    client_name: 'Gatehouse',
    ...(settings.scopes.length > 0 ? { scope: settings.scopes.join(' ') } : {}),
    ...(settings.registration?.softwareId ? { software_id: settings.registration.softwareId } : {}),
    ...(settings.registration?.softwareStatement
      ? { software_statement: settings.registration.softwareStatement }
      : {}),
  };
  const answer = await callUpstream(caller, 'registration endpoint', url, {
    method: 'POST',
    headers: {
      accept: 'application/json',
      'content-type': 'application/json',
      'user-agent': 'gatehouse',
      ...(initialAccessToken ? { authorization: `Bearer ${initialAccessToken}` } : {}),
    },
    body: JSON.stringify(metadata),
  });
  const where = `${caller.label}: registration endpoint ${safeUrl(url)}`;
  const body = jsonObject(answer);
  if (answer.status !== 201 && answer.status !== 200) {
    const detail = oauthErrorOf(body, initialAccessToken ? [initialAccessToken] : []);
    const failure = answer.status >= 400 && answer.status < 500 ? 'invalid_response' : 'unavailable';
    throw new UpstreamError(failure, `${where} refused the registration: HTTP ${answer.status}${detail}`);
  }
  const clientId = asString(body?.client_id);
  const clientSecret = asString(body?.client_secret);
  if (!body || !clientId || !clientSecret) {
    throw new UpstreamError('invalid_response', `${where} answered no client_id and client_secret`);
  }
  const now = ctx.clock.now();
  const expiresAtS = body.client_secret_expires_at;
  const expiresAt =
    typeof expiresAtS === 'number' && Number.isFinite(expiresAtS) && expiresAtS > 0
      ? expiresAtS * 1000 - SIGN_IN_MS
      : now + NEVER_MS;
  const registrationClientUri = asString(body.registration_client_uri);
  const registrationAccessToken = asString(body.registration_access_token);
  const record: UpstreamRegistrationRecord = {
    id,
    clientId,
    sealedClientSecret: ctx.store.sealer.seal(clientSecret, aad(id, 'client_secret')),
    ...(registrationClientUri ? { registrationClientUri } : {}),
    ...(registrationAccessToken
      ? {
          sealedRegistrationAccessToken: ctx.store.sealer.seal(
            registrationAccessToken,
            aad(id, 'registration_access_token'),
          ),
        }
      : {}),
    issuedAt: typeof body.client_id_issued_at === 'number' ? body.client_id_issued_at * 1000 : now,
    expiresAt,
    generation: randomId(),
  };
  const records = recordsOf(ctx.store.storage, RECORD_KINDS.upstreamRegistration);
  const stored = expiresAt > now ? record : tombstone(record, now);
  await records.put(stored).catch((err: unknown) => {
    throw new UpstreamError('unavailable', `${caller.label}: the registration could not be stored`, { cause: err });
  });
  if (stored.dropped) {
    // Already expired: used for this sign-in only, registered again at the next.
    ctx.logger.warn(
      { upstream: settings.id, clientSecretExpiresAt: upstreamText(expiresAtS, 40) },
      'the upstream registered Gatehouse with a secret that has already expired: not kept',
    );
  }
  return { clientId, clientSecret, generation: record.generation };
}

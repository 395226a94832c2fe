/**
 * The upstream's tokens at rest (config `upstreams`): the access, refresh and ID token an upstream sign-in brought,
 * kept for the grant its code starts, sealed with `encryptionKey` (core/sealing.ts: AES-256-GCM, the current key
 * seals, previous keys still open) and bound to (grant, Gatehouse subject, client, upstream, upstream client
 * generation). The binding is the envelope's AAD as well as the record's fields, so an envelope copied into another
 * record does not open, and a read naming another subject, client or grant is refused with a typed error, never
 * served. Revoking the grant deletes them (revokeGrantAndUpstreamTokens, the one helper every revocation path of
 * the token side calls); deleteUser removes them as the user's records; a grant gone any other way (deleteClient,
 * expiry) leaves a record no read serves, which expires with the grant.
 */
import { ConfigError, ServerError } from '../model/errors.js';
import type { Deps } from '../context.js';
import type { AuditRequestContext } from '../core/audit.js';
import { decodeJwt } from 'jose';
import type { ExpiringRecordStore, GrantStore, ReplayGuard } from '../model/ports.js';
import { RECORD_KINDS, recordsOf } from '../model/record-kinds.js';
import type { InteractionUpstream, UpstreamTokensRecord } from '../model/records.js';
import type { Sealer } from '../core/sealing.js';
import { UpstreamError, type UpstreamProvider, type UpstreamTokens } from '../upstream/provider.js';
import { upstreamClientGeneration } from '../upstream/flow-settings.js';

/** What a token set is bound to. */
export interface UpstreamTokenBinding {
  grantId: string;
  /** The Gatehouse user id (the grant's `sub`). */
  subject: string;
  clientId: string;
  upstreamId: string;
  clientGeneration: string;
}

/** Which part of the binding a read did not match. */
export type UpstreamBindingMismatch = 'grant' | 'subject' | 'client' | 'upstream' | 'client_generation' | 'envelope';

/** A read of upstream tokens under another binding than theirs: refused, nothing served. */
export class UpstreamTokenBindingError extends Error {
  constructor(
    readonly mismatch: UpstreamBindingMismatch,
    readonly grantId: string,
  ) {
    super(`the upstream tokens of grant ${grantId} are bound to another ${mismatch.replace('_', ' ')}`);
    this.name = 'UpstreamTokenBindingError';
  }
}

/** The AAD of a token set's envelope: every part of its binding, unambiguously. */
function bindingAad(binding: UpstreamTokenBinding): string {
  const { grantId, subject, clientId, upstreamId, clientGeneration } = binding;
  return JSON.stringify(['upstream-tokens', grantId, subject, clientId, upstreamId, clientGeneration]);
}

function requireSealer(sealer: Sealer | undefined): Sealer {
  // server.ts refuses to start with upstreams and no encryptionKey; this is the last line, never a token in clear.
  if (!sealer) throw new ServerError('upstream tokens are stored only sealed, and no encryptionKey is set');
  return sealer;
}

/** Seals `tokens` for `binding` (the envelope opens only for it). */
export function sealUpstreamTokens(tokens: UpstreamTokens, binding: UpstreamTokenBinding, sealer: Sealer | undefined) {
  return requireSealer(sealer).seal(JSON.stringify(tokens), bindingAad(binding));
}

export type SaveUpstreamTokensDeps = Pick<Deps, 'clock' | 'config'> & { storage: ExpiringRecordStore };

/**
 * Stores the sealed token set of an upstream sign-in for the grant a code of `clientId` starts (at code issue: the
 * code carries the grant id). It lives as long as that grant can (the code's lifetime, then the grant's).
 */
export async function saveUpstreamTokens(
  upstream: InteractionUpstream,
  clientId: string,
  deps: SaveUpstreamTokensDeps,
): Promise<void> {
  const now = deps.clock.now();
  const { tokens } = deps.config;
  await recordsOf(deps.storage, RECORD_KINDS.upstreamTokens).put({
    id: upstream.grantId,
    grantId: upstream.grantId,
    subject: upstream.subject,
    clientId,
    upstreamId: upstream.upstreamId,
    upstreamIssuer: upstream.upstreamIssuer,
    clientGeneration: upstream.clientGeneration,
    sealedTokens: upstream.sealedTokens,
    createdAt: now,
    expiresAt: now + (tokens.authorizationCodeTtl + tokens.grantTtl) * 1000,
  });
}

export type ReadUpstreamTokensDeps = Pick<Deps, 'clock' | 'config' | 'sealer' | 'upstreams'> & {
  storage: ExpiringRecordStore & Pick<GrantStore, 'getGrant'>;
};

/** Who asks for a grant's upstream tokens: the grant's subject and client, and the upstream they are wanted for. */
export type UpstreamTokensExpected = { subject: string; clientId: string; upstreamId: string };

/**
 * The grant's upstream tokens need a new sign-in at the upstream: it refused the refresh token (`invalid_grant`), or
 * the refresh token was spent without an answer kept. A resource-facing caller answers 401 `invalid_token` (a
 * challenge: the client signs the user in again), never a 500.
 */
export class UpstreamSignInRequiredError extends Error {
  constructor(
    readonly grantId: string,
    readonly upstreamId: string,
    readonly reason: 'invalid_grant' | 'invalid_response' | 'spent' | 'expired' | 'marked',
    options?: { cause?: unknown },
  ) {
    super(
      `the upstream tokens of grant ${grantId} need a new sign-in at upstream "${upstreamId}" (${reason})`,
      options,
    );
    this.name = 'UpstreamSignInRequiredError';
  }
}

/** The record of grant `grantId` checked against `expected`, the grant and the current upstream client. */
async function readBound(
  grantId: string,
  expected: UpstreamTokensExpected,
  deps: ReadUpstreamTokensDeps,
): Promise<{ record: UpstreamTokensRecord; provider: UpstreamProvider } | undefined> {
  const records = recordsOf(deps.storage, RECORD_KINDS.upstreamTokens);
  const record: UpstreamTokensRecord | undefined = await records.get(grantId);
  if (!record) return undefined;
  if (record.grantId !== grantId || record.id !== grantId) throw new UpstreamTokenBindingError('grant', grantId);
  if (record.subject !== expected.subject) throw new UpstreamTokenBindingError('subject', grantId);
  if (record.clientId !== expected.clientId) throw new UpstreamTokenBindingError('client', grantId);
  if (record.upstreamId !== expected.upstreamId) throw new UpstreamTokenBindingError('upstream', grantId);
  const grant = await deps.storage.getGrant(grantId);
  if (!grant || grant.revokedAt !== undefined || grant.expiresAt <= deps.clock.now()) {
    await records.delete(grantId);
    return undefined;
  }
  if (grant.userId !== record.subject) throw new UpstreamTokenBindingError('subject', grantId);
  if (grant.clientId !== record.clientId) throw new UpstreamTokenBindingError('client', grantId);
  const provider = deps.upstreams.get(record.upstreamId);
  if (!provider || (await upstreamClientGeneration(provider, deps.config)) !== record.clientGeneration) {
    throw new UpstreamTokenBindingError('client_generation', grantId);
  }
  return { record, provider };
}

function openTokens(record: UpstreamTokensRecord, deps: Pick<Deps, 'sealer'>): UpstreamTokens {
  if (record.needsSignIn) throw new UpstreamSignInRequiredError(record.grantId, record.upstreamId, 'marked');
  let opened: string;
  try {
    opened = requireSealer(deps.sealer).open(record.sealedTokens, bindingAad(record), `upstream tokens of a grant`);
  } catch (err) {
    // Altered, or sealed for another binding (a record's fields edited in the store to match another's).
    if (err instanceof ConfigError) throw new UpstreamTokenBindingError('envelope', record.grantId);
    throw err;
  }
  return JSON.parse(opened) as UpstreamTokens;
}

/**
 * The upstream tokens of grant `grantId`, read for `expected` (who asks: the grant's subject and client, and the
 * upstream they are wanted for). Undefined when there are none, or the grant is gone (revoked, expired, deleted:
 * the record is dropped then). Throws UpstreamTokenBindingError when the record, the grant or the current upstream
 * client says otherwise than `expected`, and UpstreamSignInRequiredError when they need a new sign-in upstream.
 * As stored: see freshUpstreamTokens for tokens refreshed before they expire.
 */
export async function getUpstreamTokens(
  grantId: string,
  expected: UpstreamTokensExpected,
  deps: ReadUpstreamTokensDeps,
): Promise<UpstreamTokens | undefined> {
  const read = await readBound(grantId, expected, deps);
  return read && openTokens(read.record, deps);
}

export type FreshUpstreamTokensDeps = ReadUpstreamTokensDeps & {
  storage: ReadUpstreamTokensDeps['storage'] & ReplayGuard;
};

export interface FreshUpstreamTokensOptions {
  /** Tokens expiring within this are refreshed first (default 60 s). */
  marginMs?: number;
  /**
   * How long a refresh lease is held (default 30 s, or 3 × the upstream's `timeoutMs` when longer: discovery, token
   * endpoint and JWKS may each take that long), so the holder has its answer (or has given up) before anyone else
   * may take the lease.
   */
  leaseMs?: number;
  /** How often a caller waiting for another's refresh looks again (default 50 ms). */
  pollMs?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const idTokenSubject = (idToken: string | undefined): string | undefined => {
  if (!idToken) return undefined;
  try {
    const { sub } = decodeJwt(idToken);
    return typeof sub === 'string' ? sub : undefined;
  } catch {
    return undefined;
  }
};

/**
 * The upstream tokens of grant `grantId` as getUpstreamTokens reads them, refreshed upstream first when the access
 * token expires within `marginMs`: once for every replica asking at the same time.
 *
 * The scheme, over the store's atomic primitives only (there is no compare-and-swap on expiring records):
 * - The record carries a `version` (v). The refresh lease for v is the replay guard's key
 *   `upstream-refresh:<grant>:<v>` (firstUse: Redis SET NX PX, SQL INSERT ON CONFLICT DO NOTHING, memory): of any
 *   number of callers on any replicas exactly one gets it while it lives (`leaseMs`).
 * - Only the lease holder for v writes: first the same version marked `refreshSpent` (before the refresh token goes
 *   upstream), then v+1 with the new tokens (or marked `needsSignIn`). Each write re-reads the record and refuses
 *   when its version is no longer v, and is made only while the lease is live. That is a compare-and-swap as long
 *   as the lease is exclusive: nobody else writes version v or v+1 of this record while the holder may, and any
 *   later lease is for v+1 (another key). A revocation deleting the record meanwhile is not undone for good: a
 *   record the holder writes back belongs to a revoked grant, which no read serves (readBound drops it).
 * - Everyone else waits (short sleeps, bounded by the lease time) until the version moves on, then returns the
 *   holder's result (or its needsSignIn).
 * - A refresh token is never sent upstream twice: `refreshSpent` is written before it is sent. When a holder
 *   crashes (or its answer is lost) the lease expires without a v+1; the next caller gets the lease for v again,
 *   finds the token spent and marks the grant as needing a new sign-in instead of sending it again. (For an upstream
 *   that rotates refresh tokens a resend could be taken as token theft and revoke the whole upstream grant; which one
 *   does cannot be known ahead, so none gets one.) Any failed refresh is treated so, for the same reason: the token
 *   may have reached the upstream.
 *
 * Throws UpstreamSignInRequiredError (invalid_grant, or spent), UpstreamTokenBindingError (as getUpstreamTokens: a
 * re-registration at the upstream, a new client generation, refuses the old tokens without refreshing them), and
 * UpstreamError 'unavailable' for an upstream that did not answer in time (the grant needs a new sign-in then too).
 */
export async function freshUpstreamTokens(
  grantId: string,
  expected: UpstreamTokensExpected,
  deps: FreshUpstreamTokensDeps,
  options: FreshUpstreamTokensOptions = {},
): Promise<UpstreamTokens | undefined> {
  const marginMs = options.marginMs ?? 60_000;
  const pollMs = options.pollMs ?? 50;
  const records = recordsOf(deps.storage, RECORD_KINDS.upstreamTokens);
  // Two leases at most: the holder's, and after it expired without a result, the one that marks the grant.
  for (let round = 0; round < 3; round++) {
    const read = await readBound(grantId, expected, deps);
    if (!read) return undefined;
    const { record, provider } = read;
    const tokens = openTokens(record, deps);
    const now = deps.clock.now();
    if (tokens.expiresAt === undefined || tokens.expiresAt - now > marginMs) return tokens;
    if (!tokens.refreshToken) {
      if (tokens.expiresAt > now) return tokens;
      throw new UpstreamSignInRequiredError(grantId, record.upstreamId, 'expired');
    }
    const version = record.version ?? 0;
    const timeoutMs = deps.config.upstreams.find((u) => u.id === record.upstreamId)?.timeoutMs ?? 0;
    const leaseMs = options.leaseMs ?? Math.max(30_000, 3 * timeoutMs);
    const leaseEnd = now + leaseMs;
    if (!(await deps.storage.firstUse(`upstream-refresh:${grantId}:${version}`, leaseEnd))) {
      // Another caller holds the lease: its result is the next version.
      for (let i = 0; i * pollMs < leaseMs; i++) {
        await sleep(pollMs);
        const current = await records.get(grantId);
        if (!current) return undefined;
        if ((current.version ?? 0) !== version) break;
      }
      continue;
    }

    /** The compare-and-swap of the lease holder (see above): writes `next` only over version `version`. */
    const write = async (next: UpstreamTokensRecord): Promise<boolean> => {
      if (deps.clock.now() >= leaseEnd) return false;
      const current = await records.get(grantId);
      if (!current || (current.version ?? 0) !== version) return false;
      await records.put(next);
      return true;
    };
    const markNeedsSignIn = () =>
      write({ ...record, sealedTokens: '', version: version + 1, refreshSpent: false, needsSignIn: true });

    const current = await records.get(grantId);
    if (!current || (current.version ?? 0) !== version) continue;
    if (current.refreshSpent) {
      // A holder before us sent it and left no result: never sent again.
      await markNeedsSignIn();
      throw new UpstreamSignInRequiredError(grantId, record.upstreamId, 'spent');
    }
    if (!(await write({ ...current, refreshSpent: true }))) continue;
    let fresh: UpstreamTokens;
    try {
      fresh = await provider.refresh(tokens.refreshToken);
    } catch (err) {
      await markNeedsSignIn();
      if (err instanceof UpstreamError && err.failure !== 'unavailable') {
        const reason = err.failure === 'invalid_grant' ? 'invalid_grant' : 'invalid_response';
        throw new UpstreamSignInRequiredError(grantId, record.upstreamId, reason, { cause: err });
      }
      throw err;
    }
    const before = idTokenSubject(tokens.idToken);
    const after = idTokenSubject(fresh.idToken);
    // OpenID Connect Core §12.2: a refreshed ID token is about the same user.
    if (before !== undefined && after !== undefined && before !== after) {
      await markNeedsSignIn();
      throw new UpstreamSignInRequiredError(grantId, record.upstreamId, 'invalid_response');
    }
    const next: UpstreamTokens = {
      ...fresh,
      ...(fresh.idToken === undefined && tokens.idToken !== undefined ? { idToken: tokens.idToken } : {}),
      ...(fresh.scope === undefined && tokens.scope !== undefined ? { scope: tokens.scope } : {}),
    };
    const { refreshSpent: _spent, ...rest } = current;
    const written = await write({
      ...rest,
      sealedTokens: sealUpstreamTokens(next, record, deps.sealer),
      version: version + 1,
    });
    // The lease ran out before the answer came: whoever has it now marks the grant (the token is spent).
    if (!written) throw new UpstreamSignInRequiredError(grantId, record.upstreamId, 'spent');
    return next;
  }
  throw new UpstreamError('unavailable', `the refresh of grant ${grantId}'s upstream tokens did not finish in time`);
}

export type DeleteUpstreamTokensDeps = { storage: Pick<ExpiringRecordStore, 'deleteRecord'> };

/** Deletes the upstream tokens of a grant (idempotent; none is fine). */
export function deleteUpstreamTokens(grantId: string, deps: DeleteUpstreamTokensDeps): Promise<void> {
  return deps.storage.deleteRecord(RECORD_KINDS.upstreamTokens.name, grantId);
}

export type RevokeGrantDeps = Pick<Deps, 'clock' | 'audit'> & {
  storage: Pick<GrantStore, 'revokeGrant'> & Pick<ExpiringRecordStore, 'deleteRecord'>;
};

/**
 * Revokes grant `grantId` (GrantStore.revokeGrant: refresh tokens, access tokens, a tombstone for an id not created
 * yet) and deletes its upstream tokens: the one way the token side revokes a grant (revocation endpoint, code replay,
 * refresh-token reuse). Returns what revokeGrant returns.
 */
export async function revokeGrantAndUpstreamTokens(
  grantId: string,
  deps: RevokeGrantDeps,
  why: { reason: 'revocation_endpoint' | 'code_replay' | 'refresh_reuse'; clientId?: string; subject?: string },
  context?: AuditRequestContext,
): Promise<boolean> {
  const revoked = await deps.storage.revokeGrant(grantId, deps.clock.now());
  await deleteUpstreamTokens(grantId, deps);
  deps.audit.emit({ type: 'grant.revoked', grantId, ...why }, context);
  return revoked;
}

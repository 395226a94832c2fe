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
import type { ExpiringRecordStore, GrantStore } from '../model/ports.js';
import { RECORD_KINDS, recordsOf } from '../model/record-kinds.js';
import type { InteractionUpstream, UpstreamTokensRecord } from '../model/records.js';
import type { Sealer } from '../core/sealing.js';
import type { UpstreamTokens } from '../upstream/provider.js';
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

/**
 * The upstream tokens of grant `grantId`, read for `expected` (who asks: the grant's subject and client, and the
 * upstream they are wanted for). Undefined when there are none, or the grant is gone (revoked, expired, deleted:
 * the record is dropped then). Throws UpstreamTokenBindingError when the record, the grant or the current upstream
 * client says otherwise than `expected`.
 */
export async function getUpstreamTokens(
  grantId: string,
  expected: { subject: string; clientId: string; upstreamId: string },
  deps: ReadUpstreamTokensDeps,
): Promise<UpstreamTokens | undefined> {
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
  if (!provider || upstreamClientGeneration(provider, deps.config) !== record.clientGeneration) {
    throw new UpstreamTokenBindingError('client_generation', grantId);
  }
  let opened: string;
  try {
    opened = requireSealer(deps.sealer).open(record.sealedTokens, bindingAad(record), `upstream tokens of a grant`);
  } catch (err) {
    // Altered, or sealed for another binding (a record's fields edited in the store to match another's).
    if (err instanceof ConfigError) throw new UpstreamTokenBindingError('envelope', grantId);
    throw err;
  }
  return JSON.parse(opened) as UpstreamTokens;
}

export type DeleteUpstreamTokensDeps = { storage: Pick<ExpiringRecordStore, 'deleteRecord'> };

/** Deletes the upstream tokens of a grant (idempotent; none is fine). */
export function deleteUpstreamTokens(grantId: string, deps: DeleteUpstreamTokensDeps): Promise<void> {
  return deps.storage.deleteRecord(RECORD_KINDS.upstreamTokens.name, grantId);
}

export type RevokeGrantDeps = Pick<Deps, 'clock'> & {
  storage: Pick<GrantStore, 'revokeGrant'> & Pick<ExpiringRecordStore, 'deleteRecord'>;
};

/**
 * Revokes grant `grantId` (GrantStore.revokeGrant: refresh tokens, access tokens, a tombstone for an id not created
 * yet) and deletes its upstream tokens: the one way the token side revokes a grant (revocation endpoint, code replay,
 * refresh-token reuse). Returns what revokeGrant returns.
 */
export async function revokeGrantAndUpstreamTokens(grantId: string, deps: RevokeGrantDeps): Promise<boolean> {
  const revoked = await deps.storage.revokeGrant(grantId, deps.clock.now());
  await deleteUpstreamTokens(grantId, deps);
  return revoked;
}

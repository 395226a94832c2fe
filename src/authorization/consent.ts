/** What a user may be asked to approve for a client, whether an earlier approval covers a request, and recording it. */
import { isSubset, unionScopes, type ScopeAllowList } from '../core/scope.js';
import type { AuditRequestContext } from '../core/audit.js';
import type { Deps } from '../context.js';
import type { ConsentStore } from '../model/ports.js';
import type { ClientRecord, ConsentRecord, InteractionRecord } from '../model/records.js';

export type RecordConsentDeps = Pick<Deps, 'clock' | 'config' | 'audit'> & {
  storage: Pick<ConsentStore, 'getConsent' | 'saveConsent'>;
};

/**
 * The scopes a client may ask a user for (undefined = any the server supports): static clients' `scope` is a hard
 * allow-list (none set = no allow-list; an empty one = nothing); a dynamic or metadata-document client's registered
 * scope is only a hint unless `registration.enforceRegisteredScope` (MCP clients register with the first scope they
 * see and later step up; the user's consent is the gate).
 */
export function userGrantAllowList(client: ClientRecord, deps: Pick<Deps, 'config'>): ScopeAllowList {
  return client.source === 'static' || deps.config.registration.enforceRegisteredScope ? client.scope : undefined;
}

/** True when a remembered consent covers every requested scope and resource. */
export function consentCovers(
  consent: ConsentRecord | undefined,
  scope: readonly string[],
  resource: readonly string[],
): boolean {
  return consent !== undefined && isSubset(scope, consent.scope) && isSubset(resource, consent.resource);
}

/**
 * Records that `userId` approved what `interaction` asks, added to what they approved before for that client (consent
 * is stored per user and client), and returns the consent now on record.
 */
export async function recordConsent(
  userId: string,
  interaction: Pick<InteractionRecord, 'clientId' | 'scope' | 'resource' | 'grantId'>,
  deps: RecordConsentDeps,
  context?: AuditRequestContext,
): Promise<ConsentRecord> {
  const now = deps.clock.now();
  const previous = await deps.storage.getConsent(userId, interaction.clientId);
  const consent: ConsentRecord = {
    userId,
    clientId: interaction.clientId,
    scope: unionScopes(previous?.scope ?? [], interaction.scope),
    resource: unionScopes(previous?.resource ?? [], interaction.resource),
    createdAt: now,
    expiresAt: now + deps.config.consent.ttl * 1000,
  };
  await deps.storage.saveConsent(consent);
  deps.audit.emit(
    {
      type: 'consent.granted',
      clientId: interaction.clientId,
      subject: userId,
      scopes: interaction.scope,
      resources: interaction.resource,
      ...(interaction.grantId !== undefined && { reference: interaction.grantId }),
    },
    context,
  );
  return consent;
}

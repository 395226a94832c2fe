/**
 * Deduplication of dynamic registrations (config `registration.dedupe`): MCP clients such as Claude Code register
 * again every few minutes with the same metadata, and one public server counted 1.4 million registrations. A
 * registration whose normalized metadata equals that of a dynamic client registered (or handed out again) within the
 * window, from the same software (it names a software_id or a client_name; the whole metadata, redirect URIs and
 * auth method included, must match), gets that client's id instead of a new client.
 *
 * What the RFCs allow, and what is returned:
 * - RFC 7591 §3.2.1: a client_id "SHOULD NOT be currently valid for any other registered client, though an
 *   authorization server MAY issue the same client identifier to multiple instances of a registered client at its
 *   discretion". Identical metadata from the same software is such an instance.
 * - The client_secret "SHOULD be unique for multiple instances of a client using the same client_id", and we hold
 *   secrets only hashed: so a registrant never gets another's secret. A client with a secret is deduplicated only
 *   with `confidentialClients`, and then it is replaced: same id, a new secret and registration access token, and
 *   everything issued under the old ones revoked (as deleteClient does), so the old secret stops working at once on
 *   this replica and within clientCacheSeconds on the others, and the new registrant inherits no grant or consent.
 *   Off by default, since anyone who knows a confidential client's metadata could void its secret that way.
 * - A public (or private_key_jwt) client is shared: the response is the first registration's (same client_id and
 *   client_id_issued_at) without a registration access token or registration_client_uri. RFC 7592 §3 makes both
 *   part of a registration response, but any token that manages a shared client lets its holder change the
 *   redirect URIs under the consents other instances' users gave: so a client handed out twice has its registration
 *   access token voided (the first registrant's stops working, which RFC 7592 §2.1 lets a server do by issuing new
 *   credentials) and is managed by the operator only.
 *
 * Lookup: the fingerprint (a keyed hash of the normalized metadata under the tenant's pepper) is an expiring record
 * owned by the client (RECORD_KINDS.registrationFingerprint), so it works across replicas and per tenant, and goes
 * with the client. Two identical registrations racing may both miss it and create two clients; each is complete and
 * the later fingerprint wins. A client changed by RFC 7592 PUT no longer matches its fingerprint and is not handed
 * out. One residual race: a PUT by the first registrant landing while its client is being handed out again may keep
 * its token (the store has no compare-and-set on clients); the window is that of one request.
 */
import { keyedHash } from '../core/crypto.js';
import type { ClientMetadata } from '../core/client-metadata.js';
import type { ClientResolver } from '../core/client-auth.js';
import type { Deps } from '../context.js';
import type { AuditRequestContext } from '../core/audit.js';
import { RECORD_KINDS, recordsOf } from '../model/record-kinds.js';
import type { ClientRecord } from '../model/records.js';
import type { ClientStore, ExpiringRecordStore, ReplayGuard } from '../model/ports.js';

export type DedupeDeps = Pick<Deps, 'config' | 'clock' | 'pepper' | 'logger' | 'audit'> & {
  clients: Pick<ClientResolver, 'forget'>;
  storage: Pick<ClientStore, 'getClient' | 'saveClient' | 'deleteClient'> &
    ExpiringRecordStore &
    Pick<ReplayGuard, 'firstUse'>;
};

/** Every field of ClientMetadata, so the fingerprint of a stored client reads the same fields (tsc checks the list). */
const METADATA_FIELDS: Record<keyof ClientMetadata, 'set' | 'value'> = {
  jwks: 'value',
  jwksUri: 'value',
  redirectUris: 'set',
  postLogoutRedirectUris: 'set',
  grantTypes: 'set',
  responseTypes: 'set',
  scope: 'set',
  tokenEndpointAuthMethod: 'value',
  applicationType: 'value',
  clientName: 'value',
  clientUri: 'value',
  logoUri: 'value',
  contacts: 'set',
  tosUri: 'value',
  policyUri: 'value',
  softwareId: 'value',
  softwareVersion: 'value',
  requirePushedAuthorizationRequests: 'value',
  dpopBoundAccessTokens: 'value',
};

/** JSON with object keys sorted, so equal values have one spelling. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The fingerprint of normalized metadata: set-valued fields sorted and without repeats, absent fields left out, keys
 * sorted; keyed with the pepper so the store's ids say nothing about the metadata. Exported for tests.
 */
export function registrationFingerprint(metadata: Partial<ClientMetadata>, pepper: string): string {
  const normalized: Record<string, unknown> = {};
  for (const [field, shape] of Object.entries(METADATA_FIELDS) as [keyof ClientMetadata, 'set' | 'value'][]) {
    const value = metadata[field];
    if (value === undefined) continue;
    normalized[field] = shape === 'set' && Array.isArray(value) ? [...new Set(value)].sort() : value;
  }
  return keyedHash(pepper, `gatehouse registration fingerprint\n${canonical(normalized)}`);
}

/** Whether clients of this method hold a secret the server issues. */
export function hasSecret(method: ClientRecord['tokenEndpointAuthMethod']): boolean {
  return method !== 'none' && method !== 'private_key_jwt';
}

/** What {@link findDuplicate} found. */
export type Duplicate =
  /** Nothing to dedupe against (off, no software identity, no live match): register anew, then `remember`. */
  | { kind: 'none'; fingerprint: string | undefined }
  /** A shared public (or private_key_jwt) client: answer with it (its registration access token is now void). */
  | { kind: 'shared'; client: ClientRecord; fingerprint: string }
  /** A confidential client to replace under the same id (the lease is held): register it anew with this id. */
  | { kind: 'replace'; client: ClientRecord; fingerprint: string };

/** Looks for a live client the registration of `metadata` duplicates, and prepares it to be handed out. */
export async function findDuplicate(
  metadata: ClientMetadata,
  deps: DedupeDeps,
  context?: AuditRequestContext,
): Promise<Duplicate> {
  const { windowSeconds, confidentialClients } = deps.config.registration.dedupe;
  if (windowSeconds === 0 || (metadata.softwareId === undefined && metadata.clientName === undefined))
    return { kind: 'none', fingerprint: undefined };
  const confidential = hasSecret(metadata.tokenEndpointAuthMethod);
  if (confidential && !confidentialClients) return { kind: 'none', fingerprint: undefined };
  const fingerprint = registrationFingerprint(metadata, deps.pepper);
  const found = await recordsOf(deps.storage, RECORD_KINDS.registrationFingerprint).get(fingerprint);
  const client = found && (await deps.storage.getClient(found.clientId));
  // Deleted, or changed since (RFC 7592 PUT): not the client this metadata registered.
  if (!client || client.source !== 'dynamic' || registrationFingerprint(client, deps.pepper) !== fingerprint)
    return { kind: 'none', fingerprint };
  const now = deps.clock.now();
  if (confidential) {
    // One replacement at a time per client: of two racing, the other registers a new client rather than receive a
    // secret the winner's save would void.
    if (!(await deps.storage.firstUse(`registration-replace:${client.clientId}`, now + 30_000)))
      return { kind: 'none', fingerprint };
    await deps.storage.deleteClient(client.clientId);
    // This replica's cached copy goes now; other replicas' within clientCacheSeconds.
    deps.clients.forget?.(client.clientId);
    logDeduplicated(deps, client.clientId, context);
    return { kind: 'replace', client, fingerprint };
  }
  if (client.registrationAccessTokenHash !== undefined) {
    const { registrationAccessTokenHash: _voided, ...shared } = client;
    await deps.storage.saveClient({ ...shared, updatedAt: now });
  }
  await remember(fingerprint, client.clientId, deps);
  logDeduplicated(deps, client.clientId, context);
  const { registrationAccessTokenHash: _omitted, ...answered } = client;
  return { kind: 'shared', client: answered, fingerprint };
}

/** Records (or refreshes) the fingerprint of a client's registration for the dedupe window. */
export async function remember(
  fingerprint: string | undefined,
  clientId: string,
  deps: Pick<DedupeDeps, 'config' | 'clock' | 'storage'>,
): Promise<void> {
  if (fingerprint === undefined) return;
  const expiresAt = deps.clock.now() + deps.config.registration.dedupe.windowSeconds * 1000;
  await recordsOf(deps.storage, RECORD_KINDS.registrationFingerprint).put({
    id: fingerprint,
    clientId,
    expiresAt,
  });
}

/** The one place a deduplicated registration is reported: the audit event `client.deduplicated`. */
function logDeduplicated(deps: Pick<Deps, 'audit'>, clientId: string, context?: AuditRequestContext): void {
  deps.audit.emit({ type: 'client.deduplicated', clientId }, context);
}

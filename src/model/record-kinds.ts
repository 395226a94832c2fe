/**
 * The kinds of expiring record (model/ports.ts ExpiringRecordStore). Adding a short-lived record kind costs its type
 * (model/records.ts) and one line in RECORD_KINDS: no backend code, no migration, no contract test beyond a fixture.
 */
import type { ExpiringRecordStore, JsonObject } from './ports.js';
import type {
  ClientActivityRecord,
  DeviceAuthorizationRecord,
  DeviceDecisionRecord,
  DeviceUserCodeRecord,
  FlowTraceRecord,
  InteractionRecord,
  PendingSignInRecord,
  PushedRequestRecord,
  SetupLinkRecord,
  RegistrationFingerprintRecord,
  SessionRecord,
  TotpEnrolmentRecord,
  UpstreamAuthorizationRecord,
  UpstreamLinkRecord,
  UpstreamRegistrationRecord,
  UpstreamTokensRecord,
  WebAuthnChallengeRecord,
} from './records.js';

/** The owner tag of everything a user owns, for ExpiringRecordStore.deleteRecordsOwnedBy. */
export function userOwner(userId: string): string {
  return `user:${userId}`;
}

/** The owner tag of what a client owns (its pending interactions and pushed requests), removed with the client. */
export function clientOwner(clientId: string): string {
  return `client:${clientId}`;
}

/** The owner tag of every setup link (deleted together once the first administrator exists). */
export const SETUP_OWNER = 'setup';

/** A registered kind: its store name, and who owns a record of it (if anyone). */
export interface RecordKind<T extends { id: string; expiresAt: number }> {
  readonly name: string;
  readonly ownerOf?: (record: T) => string | undefined;
}

function kind<T extends { id: string; expiresAt: number }>(
  name: string,
  ownerOf?: (record: T) => string | undefined,
): RecordKind<T> {
  if (!/^[a-z][a-z0-9_-]*$/.test(name)) throw new TypeError(`record kind name "${name}" must be [a-z][a-z0-9_-]*`);
  return ownerOf ? { name, ownerOf } : { name };
}

/** Every kind of expiring record. Kind names are stored: never rename one without a data migration. */
export const RECORD_KINDS = {
  interaction: kind<InteractionRecord>('interaction', (i) => clientOwner(i.clientId)),
  session: kind<SessionRecord>('session', (s) => userOwner(s.userId)),
  pushedRequest: kind<PushedRequestRecord>('pushed_request', (p) => clientOwner(p.clientId)),
  pendingSignIn: kind<PendingSignInRecord>('pending_sign_in', (p) => userOwner(p.userId)),
  totpEnrolment: kind<TotpEnrolmentRecord>('totp_enrolment', (e) => userOwner(e.userId)),
  webauthnChallenge: kind<WebAuthnChallengeRecord>('webauthn_challenge', (c) => userOwner(c.userId)),
  upstreamAuthorization: kind<UpstreamAuthorizationRecord>('upstream_authorization', (u) => clientOwner(u.clientId)),
  upstreamTokens: kind<UpstreamTokensRecord>('upstream_tokens', (t) => userOwner(t.subject)),
  upstreamLink: kind<UpstreamLinkRecord>('upstream_link', (l) => userOwner(l.userId)),
  upstreamRegistration: kind<UpstreamRegistrationRecord>('upstream_registration'),
  setupLink: kind<SetupLinkRecord>('setup_link', () => SETUP_OWNER),
  clientActivity: kind<ClientActivityRecord>('client_activity', (a) => clientOwner(a.clientId)),
  registrationFingerprint: kind<RegistrationFingerprintRecord>('registration_fingerprint', (r) =>
    clientOwner(r.clientId),
  ),
  deviceAuthorization: kind<DeviceAuthorizationRecord>('device_authorization', (d) => clientOwner(d.clientId)),
  deviceUserCode: kind<DeviceUserCodeRecord>('device_user_code', (u) => clientOwner(u.clientId)),
  // The user's: deleting the user withdraws an approval the device has not redeemed yet.
  deviceDecision: kind<DeviceDecisionRecord>('device_decision', (d) => userOwner(d.userId)),
  // No owner: a trace outlives the client it names (deleted clients are a common cause of a failed flow).
  flowTrace: kind<FlowTraceRecord>('flow_trace'),
} as const;

/** Typed access to one kind's records over the primitive. */
export interface RecordsOf<T> {
  put(record: T): Promise<void>;
  get(id: string): Promise<T | undefined>;
  take(id: string): Promise<T | undefined>;
  delete(id: string): Promise<void>;
}

/**
 * One kind's records as typed values. Records are stored as JSON, so a record type holds JSON data only (strings,
 * numbers, booleans, arrays, plain objects; an absent optional field is simply left out).
 */
export function recordsOf<T extends { id: string; expiresAt: number }>(
  store: ExpiringRecordStore,
  recordKind: RecordKind<T>,
): RecordsOf<T> {
  const { name, ownerOf } = recordKind;
  return {
    put: (record) => {
      const owner = ownerOf?.(record);
      const value = JSON.parse(JSON.stringify(record)) as JsonObject;
      return store.putRecord(
        name,
        record.id,
        value,
        owner ? { expiresAt: record.expiresAt, owner } : { expiresAt: record.expiresAt },
      );
    },
    get: async (id) => (await store.getRecord(name, id)) as T | undefined,
    take: async (id) => (await store.takeRecord(name, id)) as T | undefined,
    delete: (id) => store.deleteRecord(name, id),
  };
}

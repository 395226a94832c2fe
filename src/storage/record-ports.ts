/**
 * The ports written once over the expiring-record primitive, so they behave identically on every backend: a backend
 * class extends this and implements only the primitive (model/ports.ts ExpiringRecordStore).
 */
import type {
  DeviceAuthorizationStore,
  ExpiringRecordStore,
  InteractionStore,
  JsonObject,
  PushedRequestStore,
  RecordAppend,
  RecordPlacement,
  SessionStore,
} from '../model/ports.js';
import { RECORD_KINDS, recordsOf, userOwner } from '../model/record-kinds.js';
import type {
  DeviceAuthorizationRecord,
  DeviceDecisionRecord,
  DeviceUserCodeRecord,
  InteractionRecord,
  PushedRequestRecord,
  SessionRecord,
} from '../model/records.js';

/** A backend extends this and `implements Storage`: it writes the primitive, the base adds the ports. */
export abstract class RecordBackedStorage
  implements ExpiringRecordStore, InteractionStore, SessionStore, PushedRequestStore, DeviceAuthorizationStore
{
  abstract putRecord(kind: string, id: string, value: JsonObject, placement: RecordPlacement): Promise<void>;
  abstract getRecord(kind: string, id: string): Promise<JsonObject | undefined>;
  abstract takeRecord(kind: string, id: string): Promise<JsonObject | undefined>;
  abstract appendToRecord(kind: string, id: string, append: RecordAppend): Promise<void>;
  abstract deleteRecord(kind: string, id: string): Promise<void>;
  abstract deleteRecordsOwnedBy(owner: string, kind?: string): Promise<number>;

  private readonly interactions = recordsOf(this, RECORD_KINDS.interaction);
  private readonly sessions = recordsOf(this, RECORD_KINDS.session);
  private readonly pushedRequests = recordsOf(this, RECORD_KINDS.pushedRequest);
  private readonly deviceAuthorizations = recordsOf(this, RECORD_KINDS.deviceAuthorization);
  private readonly deviceUserCodes = recordsOf(this, RECORD_KINDS.deviceUserCode);
  private readonly deviceDecisions = recordsOf(this, RECORD_KINDS.deviceDecision);

  saveInteraction(interaction: InteractionRecord): Promise<void> {
    return this.interactions.put(interaction);
  }
  getInteraction(id: string): Promise<InteractionRecord | undefined> {
    return this.interactions.get(id);
  }
  takeInteraction(id: string): Promise<InteractionRecord | undefined> {
    return this.interactions.take(id);
  }

  saveSession(session: SessionRecord): Promise<void> {
    return this.sessions.put(session);
  }
  getSession(id: string): Promise<SessionRecord | undefined> {
    return this.sessions.get(id);
  }
  deleteSession(id: string): Promise<void> {
    return this.sessions.delete(id);
  }
  deleteSessionsOf(userId: string): Promise<number> {
    return this.deleteRecordsOwnedBy(userOwner(userId), RECORD_KINDS.session.name);
  }

  savePushedRequest(request: PushedRequestRecord): Promise<void> {
    return this.pushedRequests.put(request);
  }
  takePushedRequest(id: string): Promise<PushedRequestRecord | undefined> {
    return this.pushedRequests.take(id);
  }

  async saveDeviceAuthorization(
    authorization: DeviceAuthorizationRecord,
    userCode: DeviceUserCodeRecord,
  ): Promise<void> {
    // The authorization first: a user code found always leads to its authorization.
    await this.deviceAuthorizations.put(authorization);
    await this.deviceUserCodes.put(userCode);
  }
  getDeviceAuthorization(deviceCodeHash: string): Promise<DeviceAuthorizationRecord | undefined> {
    return this.deviceAuthorizations.get(deviceCodeHash);
  }
  deleteDeviceAuthorization(deviceCodeHash: string): Promise<void> {
    return this.deviceAuthorizations.delete(deviceCodeHash);
  }
  takeDeviceUserCode(userCodeHash: string): Promise<DeviceUserCodeRecord | undefined> {
    return this.deviceUserCodes.take(userCodeHash);
  }
  saveDeviceDecision(decision: DeviceDecisionRecord): Promise<void> {
    return this.deviceDecisions.put(decision);
  }
  getDeviceDecision(deviceCodeHash: string): Promise<DeviceDecisionRecord | undefined> {
    return this.deviceDecisions.get(deviceCodeHash);
  }
  takeDeviceDecision(deviceCodeHash: string): Promise<DeviceDecisionRecord | undefined> {
    return this.deviceDecisions.take(deviceCodeHash);
  }
}

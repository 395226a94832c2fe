/** The memory store's signing keys and named secrets (model/ports.ts KeyStore). */
import type { Clock } from '../../core/clock.js';
import type { KeyStore } from '../../model/ports.js';
import type { SigningKeyRecord } from '../../model/records.js';
import { BoundedMap, copy, type MapLimits } from './bounded-map.js';

/** Signing keys and secrets, for MemoryStorage. */
export class MemoryKeys implements KeyStore {
  private readonly signingKeys: BoundedMap<SigningKeyRecord>;
  private readonly secrets: BoundedMap<string>;
  readonly maps: readonly BoundedMap<unknown>[];

  constructor(
    private readonly clock: Clock,
    limits: MapLimits,
  ) {
    // Active keys never expire; retired ones leave the JWKS at their expiresAt.
    this.signingKeys = new BoundedMap<SigningKeyRecord>('signingKeys', limits, (key) =>
      key.status === 'retired' ? key.expiresAt : undefined,
    );
    this.secrets = new BoundedMap('secrets', limits, () => undefined);
    this.maps = [this.signingKeys, this.secrets] as BoundedMap<unknown>[];
  }

  async listSigningKeys(): Promise<SigningKeyRecord[]> {
    // Insertion order reversed, then a stable sort: equal createdAt still lists the later-added key first.
    return this.signingKeys
      .live(this.clock.now())
      .map(([, key]) => copy(key))
      .reverse()
      .sort((a, b) => b.createdAt - a.createdAt);
  }

  async initSigningKeys(initial: SigningKeyRecord[]): Promise<SigningKeyRecord[]> {
    const now = this.clock.now();
    const usable = this.signingKeys.live(now).some(([, key]) => key.status === 'active');
    if (!usable) for (const key of initial) this.signingKeys.set(key.kid, copy(key), now);
    return this.listSigningKeys();
  }

  async rotateSigningKey(key: SigningKeyRecord, retireUntil: number): Promise<void> {
    const now = this.clock.now();
    for (const [kid, existing] of this.signingKeys.live(now)) {
      if (kid !== key.kid && existing.status === 'active' && existing.alg === key.alg) {
        this.signingKeys.set(kid, { ...existing, status: 'retired', expiresAt: retireUntil }, now);
      }
    }
    const active: SigningKeyRecord = { ...copy(key), status: 'active' };
    delete active.expiresAt;
    this.signingKeys.set(key.kid, active, now);
  }

  async getOrCreateSecret(name: string, candidate: string): Promise<string> {
    const now = this.clock.now();
    const existing = this.secrets.get(name, now);
    if (existing !== undefined) return existing;
    this.secrets.set(name, candidate, now);
    return candidate;
  }
}

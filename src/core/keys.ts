/**
 * Signing keys: generated on first start and kept in the store so every replica signs and publishes the same
 * keys; imported once per process and cached (no per-request import). Rotation adds a new active key and keeps
 * the old one published until every token it signed has expired.
 */
import {
  calculateJwkThumbprint,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import type { Clock } from './clock.js';
import { openStored, type Sealer } from './sealing.js';
import type { SigningKeyRecord } from '../model/records.js';
import type { KeyStore } from '../model/ports.js';

export type SigningAlg = SigningKeyRecord['alg'];

/** A key ready to sign with. */
export interface ActiveKey {
  kid: string;
  alg: SigningAlg;
  key: CryptoKey;
}

/** Generates a new key record for `alg`; kid is the RFC 7638 thumbprint. */
export async function generateSigningKey(alg: SigningAlg, clock: Clock): Promise<SigningKeyRecord> {
  const { privateKey, publicKey } = await generateKeyPair(
    alg,
    alg === 'RS256'
      ? { extractable: true, modulusLength: 2048 }
      : { extractable: true, crv: alg === 'EdDSA' ? 'Ed25519' : undefined },
  );
  const privateJwk = await exportJWK(privateKey);
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return {
    kid,
    alg,
    privateJwk: { ...privateJwk, kid, alg },
    publicJwk: { ...publicJwk, kid, alg, use: 'sig' },
    createdAt: clock.now(),
    status: 'active',
  };
}

/**
 * With a sealer, the record's privateJwk becomes `{ sealed: <envelope> }` (AAD: the kid), so the store never holds
 * the private key in clear.
 */
export function sealSigningKey(record: SigningKeyRecord, sealer: Sealer | undefined): SigningKeyRecord {
  if (!sealer) return record;
  return {
    ...record,
    privateJwk: { sealed: sealer.seal(JSON.stringify(record.privateJwk), `signing-key:${record.kid}`) },
  };
}

/** The private JWK of a stored record: opened if sealed; `inClear` for a record written without encryptionKey. */
export function openPrivateJwk(record: SigningKeyRecord, sealer: Sealer | undefined): { jwk: JWK; inClear: boolean } {
  const sealed = record.privateJwk.sealed;
  if (typeof sealed !== 'string') return { jwk: record.privateJwk, inClear: true };
  const { value } = openStored(sealed, sealer, `signing-key:${record.kid}`, `signing key ${record.kid}`);
  return { jwk: JSON.parse(value) as JWK, inClear: false };
}

/** Holds the current key set in memory, refreshed from the store periodically. */
export class KeyManager {
  /** Per alg, newest first: the keys that may sign (active ones, and retired ones still inside their overlap). */
  private candidates = new Map<SigningAlg, (ActiveKey & { createdAt: number })[]>();
  private imported = new Map<string, CryptoKey>();
  /** A new key signs only once every replica has had time to publish it (one refresh interval). */
  private publishDelayMs = 0;
  private jwks: { keys: JWK[] } = { keys: [] };
  private jwksJson = '{"keys":[]}';
  private localKeySet: JWTVerifyGetKey = createLocalJWKSet({ keys: [] });
  private timer: NodeJS.Timeout | undefined;
  private lastKids = '';
  private clearKids: string[] = [];

  constructor(
    private readonly store: KeyStore,
    private readonly clock: Clock,
    private readonly algs: SigningAlg[],
    /** Seals new private keys and opens stored ones (config `encryptionKey`); absent: kept in clear. */
    private readonly sealer?: Sealer,
  ) {}

  /** Creates keys on first start (race-safe across replicas) and loads them. */
  async init(refreshMs: number): Promise<void> {
    this.publishDelayMs = refreshMs;
    let keys = await this.store.listSigningKeys();
    const missing = this.algs.filter((alg) => !keys.some((k) => k.alg === alg && k.status === 'active'));
    if (keys.length === 0) {
      const initial = await Promise.all(
        this.algs.map(async (alg) => sealSigningKey(await generateSigningKey(alg, this.clock), this.sealer)),
      );
      keys = await this.store.initSigningKeys(initial);
    } else if (missing.length > 0) {
      // A newly configured algorithm on an existing store: add its key without retiring others.
      for (const alg of missing) {
        await this.store.rotateSigningKey(
          sealSigningKey(await generateSigningKey(alg, this.clock), this.sealer),
          this.clock.now(),
        );
      }
      keys = await this.store.listSigningKeys();
    }
    await this.load(keys);
    if (refreshMs > 0) {
      this.timer = setInterval(() => {
        this.refresh().catch(() => undefined);
      }, refreshMs);
      this.timer.unref();
    }
  }

  /** Re-reads keys from the store (picks up a rotation done by the CLI or another replica). */
  async refresh(): Promise<void> {
    await this.load(await this.store.listSigningKeys());
  }

  private async load(keys: SigningKeyRecord[]): Promise<void> {
    const kids = keys.map((k) => `${k.kid}:${k.status}`).join(',');
    if (kids === this.lastKids) return;
    const candidates = new Map<SigningAlg, (ActiveKey & { createdAt: number })[]>();
    const imported = new Map<string, CryptoKey>();
    const clearKids: string[] = [];
    // listSigningKeys is newest first and leaves out retired keys past their overlap.
    for (const record of keys) {
      if (typeof record.privateJwk.sealed !== 'string') clearKids.push(record.kid);
      const key =
        this.imported.get(record.kid) ??
        ((await importJWK(openPrivateJwk(record, this.sealer).jwk, record.alg)) as CryptoKey);
      imported.set(record.kid, key);
      const list = candidates.get(record.alg) ?? [];
      list.push({ kid: record.kid, alg: record.alg, key, createdAt: record.createdAt });
      candidates.set(record.alg, list);
    }
    this.candidates = candidates;
    this.imported = imported;
    this.jwks = { keys: keys.map((k) => k.publicJwk as JWK) };
    this.jwksJson = JSON.stringify(this.jwks);
    this.localKeySet = createLocalJWKSet(this.jwks);
    this.lastKids = kids;
    this.clearKids = clearKids;
  }

  /** Kids of loaded keys whose private key the store holds in clear (written before encryptionKey was set). */
  keysInClear(): string[] {
    return this.clearKids;
  }

  /**
   * The key that signs with `alg` (default: the first configured alg): the newest key that every replica has been
   * publishing for at least one refresh interval, so a resource server that refetches the JWKS from any replica finds
   * it. A brand-new key set (first start) signs at once.
   */
  signer(alg: SigningAlg = this.algs[0]!): ActiveKey {
    const list = this.candidates.get(alg) ?? this.candidates.get(this.algs[0]!);
    if (!list || list.length === 0) throw new Error('no signing key loaded');
    const cutoff = this.clock.now() - this.publishDelayMs;
    return list.find((k) => k.createdAt <= cutoff) ?? list[0]!;
  }

  /** The published JWKS (public keys only). */
  publicJwks(): { keys: JWK[] } {
    return this.jwks;
  }

  /** The JWKS serialized once per key change. */
  publicJwksJson(): string {
    return this.jwksJson;
  }

  /** Key lookup for verifying our own tokens (introspection, revocation, userinfo). */
  verificationKeys(): JWTVerifyGetKey {
    return this.localKeySet;
  }

  /** Algorithms with an active key. */
  algorithms(): SigningAlg[] {
    return [...this.candidates.keys()];
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

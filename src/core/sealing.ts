/**
 * Sealing of what the store keeps but must not reveal to someone who can only read it: signing private keys and the
 * server secrets (cookie key, client-secret pepper). Done above the store, so every backend stores the envelope as an
 * opaque string. Envelope: `sealed:v1:<keyId>:<SecretBox output>`, where keyId names the encryption key that sealed
 * it (so a rotated key set picks the right one) and the AAD binds the envelope to its record (a sealed secret copied
 * into another record does not open).
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../model/errors.js';
import { SecretBox, randomToken } from './crypto.js';
import type { KeyStore } from '../model/ports.js';

const PREFIX = 'sealed:v1:';

/** Public, short name of an encryption key: first 8 hex digits of SHA-256 of its bytes. */
export function encryptionKeyId(base64Key: string): string {
  return createHash('sha256').update(Buffer.from(base64Key, 'base64')).digest('hex').slice(0, 8);
}

/** True for a value written by {@link Sealer.seal} (a plaintext secret is base64url and never contains ':'). */
export function isSealed(value: unknown): value is string {
  return typeof value === 'string' && value.startsWith(PREFIX);
}

/** Seals with the current encryption key; opens with the current or any previous one. */
export class Sealer {
  readonly currentKeyId: string;
  private readonly boxes = new Map<string, SecretBox>();

  constructor(current: string, previous: string[] = []) {
    this.currentKeyId = encryptionKeyId(current);
    this.boxes.set(this.currentKeyId, new SecretBox(current));
    for (const key of previous) {
      const id = encryptionKeyId(key);
      if (!this.boxes.has(id)) this.boxes.set(id, new SecretBox(key));
    }
  }

  seal(plaintext: string, aad: string): string {
    return `${PREFIX}${this.currentKeyId}:${this.boxes.get(this.currentKeyId)!.seal(plaintext, aad)}`;
  }

  /** Opens an envelope; `what` names the record in the one-line start error when it cannot. */
  open(envelope: string, aad: string, what: string): string {
    const rest = envelope.slice(PREFIX.length);
    const colon = rest.indexOf(':');
    const keyId = rest.slice(0, colon);
    const box = colon > 0 ? this.boxes.get(keyId) : undefined;
    if (!box) {
      throw new ConfigError(
        `encryptionKey: ${what} in the store is sealed with encryption key ${keyId || '?'}, which is neither encryptionKey (${this.currentKeyId}) nor in encryptionKeysPrevious`,
      );
    }
    try {
      return box.open(rest.slice(colon + 1), aad);
    } catch {
      throw new ConfigError(
        `encryptionKey: ${what} in the store does not open with encryption key ${keyId} (altered, or copied from another record)`,
      );
    }
  }
}

/** Builds the sealer the config asks for (undefined without `encryptionKey`). */
export function sealerFromConfig(config: {
  encryptionKey?: string;
  encryptionKeysPrevious?: string[];
}): Sealer | undefined {
  return config.encryptionKey ? new Sealer(config.encryptionKey, config.encryptionKeysPrevious ?? []) : undefined;
}

/**
 * Opens `value` if sealed. A plaintext value (written before `encryptionKey` was set) is returned as is, flagged
 * `inClear`; a sealed value without a sealer is a start error.
 */
export function openStored(
  value: string,
  sealer: Sealer | undefined,
  aad: string,
  what: string,
): { value: string; inClear: boolean } {
  if (!isSealed(value)) return { value, inClear: true };
  if (!sealer) {
    throw new ConfigError(
      `encryptionKey: ${what} in the store is sealed (encryption key ${value.slice(PREFIX.length).split(':')[0]}), but no encryptionKey is set (GATEHOUSE_ENCRYPTION_KEY)`,
    );
  }
  return { value: sealer.open(value, aad, what), inClear: false };
}

/**
 * A named server secret shared by every replica (KeyStore.getOrCreateSecret is atomic create-if-absent): the
 * candidate is sealed before it reaches the store, and what comes back (ours or another replica's) is opened.
 */
export async function getOrCreateSealedSecret(
  store: Pick<KeyStore, 'getOrCreateSecret'>,
  name: string,
  sealer: Sealer | undefined,
): Promise<{ value: string; inClear: boolean }> {
  const aad = `secret:${name}`;
  const candidate = randomToken();
  const stored = await store.getOrCreateSecret(name, sealer ? sealer.seal(candidate, aad) : candidate);
  return openStored(stored, sealer, aad, `secret ${name}`);
}

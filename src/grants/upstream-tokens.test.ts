/**
 * Upstream tokens at rest, against the memory store: sealed (the store's own record holds no token in clear), read
 * only under their binding (subject, client, grant, upstream, upstream client generation), gone with the grant.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.js';
import { ManualClock } from '../core/clock.js';
import { silentAuditor } from '../core/audit.js';
import { Sealer } from '../core/sealing.js';
import { MemoryStorage } from '../storage/memory/memory-storage.js';
import { RECORD_KINDS } from '../model/record-kinds.js';
import type { GrantRecord, InteractionUpstream } from '../model/records.js';
import type { UpstreamProvider, UpstreamTokens } from '../upstream/provider.js';
import { upstreamClientGeneration } from '../upstream/flow-settings.js';
import {
  getUpstreamTokens,
  revokeGrantAndUpstreamTokens,
  saveUpstreamTokens,
  sealUpstreamTokens,
  UpstreamTokenBindingError,
  type ReadUpstreamTokensDeps,
} from './upstream-tokens.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const NEW_KEY = Buffer.alloc(32, 9).toString('base64');
const TOKENS: UpstreamTokens = {
  tokenType: 'Bearer',
  accessToken: 'upstream-access-token-0123456789',
  refreshToken: 'upstream-refresh-token-0123456789',
  idToken: 'eyJhbGciOiJSUzI1NiJ9.upstream-id-token.sig',
  scope: 'openid email',
};

const provider = (issuer = 'https://login.corp.example.com'): UpstreamProvider => ({
  id: 'corp',
  name: 'Corp',
  issuer,
  begin: () => Promise.reject(new Error('not used')),
  complete: () => Promise.reject(new Error('not used')),
  refresh: () => Promise.reject(new Error('not used')),
  status: () => ({ status: 'up', discovery: 'static' }),
  probe: () => Promise.resolve({ status: 'up', discovery: 'static' }),
});

async function setup() {
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const storage = new MemoryStorage({ clock, cleanupIntervalMs: 0 });
  const config = parseConfig({ issuer: 'https://auth.example.com' });
  const deps: ReadUpstreamTokensDeps = {
    clock,
    storage,
    config,
    sealer: new Sealer(KEY),
    upstreams: new Map([['corp', provider()]]),
  };
  const grant: GrantRecord = {
    id: 'grant-1',
    clientId: 'notes',
    userId: 'user-1',
    scope: ['openid'],
    resource: [],
    authTime: clock.now(),
    createdAt: clock.now(),
    expiresAt: clock.now() + 86_400_000,
  };
  const generation = await upstreamClientGeneration(provider(), config);
  const upstream: InteractionUpstream = {
    upstreamId: 'corp',
    upstreamIssuer: 'https://login.corp.example.com',
    subject: 'user-1',
    grantId: grant.id,
    clientGeneration: generation,
    sealedTokens: sealUpstreamTokens(
      TOKENS,
      { grantId: grant.id, subject: 'user-1', clientId: 'notes', upstreamId: 'corp', clientGeneration: generation },
      deps.sealer,
    ),
  };
  await saveUpstreamTokens(upstream, 'notes', deps);
  await storage.createGrant(grant, undefined, { jti: 'jti-1', expiresAt: clock.now() + 3_600_000 });
  const asked = { subject: 'user-1', clientId: 'notes', upstreamId: 'corp' };
  return { clock, storage, deps, grant, asked };
}

const refusal = (mismatch: string) => expect.objectContaining({ name: 'UpstreamTokenBindingError', mismatch });

describe('upstream tokens at rest', () => {
  it('are stored sealed: the record in the store has no token in clear', async () => {
    const { storage, grant } = await setup();
    const stored = await storage.getRecord(RECORD_KINDS.upstreamTokens.name, grant.id);
    expect(stored).toMatchObject({ grantId: grant.id, subject: 'user-1', clientId: 'notes', upstreamId: 'corp' });
    const text = JSON.stringify(stored);
    for (const token of [TOKENS.accessToken, TOKENS.refreshToken!, TOKENS.idToken!]) expect(text).not.toContain(token);
    expect(stored!.sealedTokens).toMatch(/^sealed:v1:/);
  });

  it('are read back by their own subject, client and grant', async () => {
    const { deps, grant, asked } = await setup();
    expect(await getUpstreamTokens(grant.id, asked, deps)).toEqual(TOKENS);
  });

  it('a read for another subject, client or upstream is a binding error, never served', async () => {
    const { deps, grant, asked } = await setup();
    await expect(getUpstreamTokens(grant.id, { ...asked, subject: 'user-2' }, deps)).rejects.toEqual(
      refusal('subject'),
    );
    await expect(getUpstreamTokens(grant.id, { ...asked, clientId: 'other' }, deps)).rejects.toEqual(refusal('client'));
    await expect(getUpstreamTokens(grant.id, { ...asked, upstreamId: 'gh' }, deps)).rejects.toBeInstanceOf(
      UpstreamTokenBindingError,
    );
  });

  it("a record moved under another grant, or edited to another's binding, does not open", async () => {
    const { storage, deps, clock, grant, asked } = await setup();
    const stored = (await storage.getRecord(RECORD_KINDS.upstreamTokens.name, grant.id))!;
    // Copied under grant-2 (a grant of the same user and client), its fields kept: refused as another grant's.
    await storage.createGrant({ ...grant, id: 'grant-2' }, undefined, { jti: 'j2', expiresAt: clock.now() + 1000 });
    await storage.putRecord(RECORD_KINDS.upstreamTokens.name, 'grant-2', stored, { expiresAt: clock.now() + 1000 });
    await expect(getUpstreamTokens('grant-2', asked, deps)).rejects.toEqual(refusal('grant'));
    // ...and with its grant fields edited too, the envelope (bound to grant-1) does not open.
    const edited = { ...stored, id: 'grant-2', grantId: 'grant-2' };
    await storage.putRecord(RECORD_KINDS.upstreamTokens.name, 'grant-2', edited, { expiresAt: clock.now() + 1000 });
    await expect(getUpstreamTokens('grant-2', asked, deps)).rejects.toEqual(refusal('envelope'));
    // A grant of another user under the record's id: refused.
    await storage.createGrant({ ...grant, id: 'grant-3', userId: 'user-2' }, undefined, { jti: 'j3', expiresAt: 1e15 });
    const other = { ...stored, id: 'grant-3', grantId: 'grant-3' };
    await storage.putRecord(RECORD_KINDS.upstreamTokens.name, 'grant-3', other, { expiresAt: clock.now() + 1000 });
    await expect(getUpstreamTokens('grant-3', asked, deps)).rejects.toEqual(refusal('subject'));
  });

  it('tokens of a replaced upstream client (another generation) are not served', async () => {
    const { deps, grant, asked } = await setup();
    const moved = { ...deps, upstreams: new Map([['corp', provider('https://login.new.example.com')]]) };
    await expect(getUpstreamTokens(grant.id, asked, moved)).rejects.toEqual(refusal('client_generation'));
    const gone = { ...deps, upstreams: new Map() };
    await expect(getUpstreamTokens(grant.id, asked, gone)).rejects.toEqual(refusal('client_generation'));
  });

  it('open after an encryption key rotation (the old key in encryptionKeysPrevious)', async () => {
    const { deps, grant, asked } = await setup();
    const rotated = { ...deps, sealer: new Sealer(NEW_KEY, [KEY]) };
    expect(await getUpstreamTokens(grant.id, asked, rotated)).toEqual(TOKENS);
  });

  it('revoking the grant deletes them; a grant revoked elsewhere serves nothing and drops them', async () => {
    const { storage, deps, clock, grant, asked } = await setup();
    expect(
      await revokeGrantAndUpstreamTokens(
        grant.id,
        { clock, storage, audit: silentAuditor(clock) },
        { reason: 'revocation_endpoint' },
      ),
    ).toBe(true);
    expect(await storage.getRecord(RECORD_KINDS.upstreamTokens.name, grant.id)).toBeUndefined();
    expect(await getUpstreamTokens(grant.id, asked, deps)).toBeUndefined();

    const again = await setup();
    await again.storage.revokeGrant(again.grant.id, clock.now());
    expect(await getUpstreamTokens(again.grant.id, again.asked, again.deps)).toBeUndefined();
    expect(await again.storage.getRecord(RECORD_KINDS.upstreamTokens.name, again.grant.id)).toBeUndefined();
  });

  it('deleteUser removes them (owned by the user)', async () => {
    const { storage, grant } = await setup();
    await storage.deleteUser('user-1');
    expect(await storage.getRecord(RECORD_KINDS.upstreamTokens.name, grant.id)).toBeUndefined();
  });

  it('sealing without an encryption key is refused', () => {
    expect(() =>
      sealUpstreamTokens(
        TOKENS,
        { grantId: 'g', subject: 's', clientId: 'c', upstreamId: 'u', clientGeneration: 'x' },
        undefined,
      ),
    ).toThrow(expect.objectContaining({ code: 'server_error', detail: expect.stringMatching(/encryptionKey/) }));
  });
});

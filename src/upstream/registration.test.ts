import { describe, expect, it } from 'vitest';
import { ManualClock } from '../core/clock.js';
import { Sealer } from '../core/sealing.js';
import { RECORD_KINDS, recordsOf } from '../model/record-kinds.js';
import { MemoryStorage } from '../storage/memory/memory-storage.js';
import { upstreamSchema } from '../config/upstreams.js';
import { resolveUpstream } from './presets.js';
import { dropRegistration, ensureRegistration, registrationId, type RegistrationContext } from './registration.js';
import type { FetchLike } from './http.js';

const KEY = Buffer.alloc(32, 7).toString('base64');
const REDIRECT = 'https://auth.example.com/upstream/callback';

function setup(answer: (body: Record<string, unknown>) => Record<string, unknown>) {
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const storage = new MemoryStorage({ clock, cleanupIntervalMs: 0 });
  const warnings: string[] = [];
  const sent: { url: string; authorization?: string; body: Record<string, unknown> }[] = [];
  const fetch: FetchLike = (input, init) => {
    const body = JSON.parse(String(init?.body)) as Record<string, unknown>;
    const headers = init?.headers as Record<string, string>;
    sent.push({ url: String(input), authorization: headers.authorization, body });
    return Promise.resolve(
      new Response(JSON.stringify(answer(body)), { status: 201, headers: { 'content-type': 'application/json' } }),
    );
  };
  const settings = resolveUpstream(
    upstreamSchema.parse({
      id: 'corp',
      name: 'Corp',
      type: 'oidc',
      issuer: 'https://idp.example.com',
      registration: { mode: 'dynamic', endpoint: 'https://idp.example.com/reg' },
    }),
  );
  const ctx: RegistrationContext = {
    settings,
    store: { storage, sealer: new Sealer(KEY), redirectUri: REDIRECT },
    caller: { label: 'upstream "corp"', fetch, timeoutMs: 1000 },
    clock,
    logger: { warn: (_obj, msg) => warnings.push(msg ?? '') },
    endpoint: () => Promise.resolve(undefined),
  };
  const records = recordsOf(storage, RECORD_KINDS.upstreamRegistration);
  return { clock, storage, ctx, sent, warnings, records, id: registrationId(settings, REDIRECT) };
}

describe('ensureRegistration', () => {
  it('registers once, keeps the secret sealed until client_secret_expires_at, then registers again', async () => {
    let n = 0;
    const t = setup(() => ({
      client_id: `client-${++n}`,
      client_secret: `secret-${n}-of-some-length`,
      client_secret_expires_at: Math.floor(Date.UTC(2030, 0, 2) / 1000),
    }));
    const first = await ensureRegistration(t.ctx);
    expect(first).toMatchObject({ clientId: 'client-1', clientSecret: 'secret-1-of-some-length' });
    expect(await ensureRegistration(t.ctx)).toEqual(first);
    expect(t.sent).toHaveLength(1);
    expect(t.sent[0]!.body).toMatchObject({ redirect_uris: [REDIRECT], scope: 'openid email profile' });
    const stored = (await t.records.get(t.id))!;
    // Used until 10 minutes before the secret expires.
    expect(stored.expiresAt).toBe(Date.UTC(2030, 0, 2) - 600_000);
    expect(JSON.stringify(stored)).not.toContain('secret-1');
    t.clock.advance(86_400_000 - 600_000 - 1);
    expect((await ensureRegistration(t.ctx)).clientId).toBe('client-1');
    t.clock.advance(1);
    const second = await ensureRegistration(t.ctx);
    expect(second.clientId).toBe('client-2');
    expect(second.generation).not.toBe(first.generation);
  });

  it('0 is ten years; invalid_client drops only the generation it names', async () => {
    let n = 0;
    const t = setup(() => ({ client_id: `c${++n}`, client_secret: 's', client_secret_expires_at: 0 }));
    const first = await ensureRegistration(t.ctx);
    expect((await t.records.get(t.id))!.expiresAt).toBe(t.clock.now() + 10 * 365 * 86_400_000);
    await dropRegistration(t.ctx, 'another-generation');
    expect((await ensureRegistration(t.ctx)).clientId).toBe('c1');
    await dropRegistration(t.ctx, first.generation);
    expect((await ensureRegistration(t.ctx)).clientId).toBe('c2');
  });

  it('warns once when the registration is older than 90 days', async () => {
    const t = setup(() => ({ client_id: 'c', client_secret: 's' }));
    await ensureRegistration(t.ctx);
    t.clock.advance(91 * 86_400_000);
    await ensureRegistration(t.ctx);
    await ensureRegistration(t.ctx);
    expect(t.warnings.filter((w) => w.includes('older than 90 days'))).toHaveLength(1);
  });

  it('sends the initial access token as a Bearer token', async () => {
    const t = setup(() => ({ client_id: 'c', client_secret: 's' }));
    process.env.GH_UNIT_DCR_IAT = 'the-initial-access-token';
    try {
      t.ctx.settings.registration = { mode: 'dynamic', initialAccessTokenEnv: 'GH_UNIT_DCR_IAT' };
      t.ctx.endpoint = () => Promise.resolve('https://idp.example.com/discovered-reg');
      await ensureRegistration(t.ctx);
      expect(t.sent[0]).toMatchObject({
        url: 'https://idp.example.com/discovered-reg',
        authorization: 'Bearer the-initial-access-token',
      });
    } finally {
      delete process.env.GH_UNIT_DCR_IAT;
    }
  });
});

describe('ensureRegistration across replicas', () => {
  it('of concurrent callers one registers; the others get its record', async () => {
    let n = 0;
    const t = setup(() => ({ client_id: `c${++n}`, client_secret: 's' }));
    const all = await Promise.all(Array.from({ length: 5 }, () => ensureRegistration(t.ctx)));
    expect(t.sent).toHaveLength(1);
    expect(new Set(all.map((c) => c.generation)).size).toBe(1);
  });
});

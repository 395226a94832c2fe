/**
 * The upstream sign-in flow over the provider contract (upstream/provider.ts), against the memory store: the pending
 * record's single use (also under a race), the browser binding, the mix-up check, what each upstream failure ends
 * as, what is kept sealed, and the identity -> user mapping. The provider here is a stub that hands back what a test
 * tells it to: the real relying-party side (and a real upstream) are in test/e2e/upstream-sign-in.test.ts.
 */
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ManualClock } from '../core/clock.js';
import { silentAuditor } from '../core/audit.js';
import { hashToken, randomToken } from '../core/crypto.js';
import { Sealer } from '../core/sealing.js';
import { MemoryStorage } from '../storage/memory/memory-storage.js';
import { withHashedIds } from '../storage/hashed-ids.js';
import { RECORD_KINDS } from '../model/record-kinds.js';
import type { InteractionRecord, UserRecord } from '../model/records.js';
import {
  UpstreamError,
  type UpstreamIdentity,
  type UpstreamProvider,
  type UpstreamStatus,
  type UpstreamRequest,
  type UpstreamTokens,
} from '../upstream/provider.js';
import {
  completeUpstreamSignIn,
  goUpstream,
  UPSTREAM_CALL_DEADLINE_MS,
  upstreamCallbackUrl,
  UpstreamSignInExpired,
  type CompleteUpstreamDeps,
} from './upstream-sign-in.js';
import { hasLocalUsers, upstreamUser, upstreamUserId } from './upstream-users.js';

const ISSUER = 'https://auth.example.com';
const BINDING = hashToken('browser-binding:the-browser');
const OTHER_BROWSER = hashToken('browser-binding:another-browser');

type Answer = (callback: URLSearchParams) => Promise<{ identity: UpstreamIdentity; tokens: UpstreamTokens }>;

/** A provider that records its calls and answers `complete` with `answer`. */
class StubUpstream implements UpstreamProvider {
  readonly begun: (UpstreamRequest & { redirectUri: string })[] = [];
  readonly completed: {
    callback: URLSearchParams;
    pending: { nonce: string; codeVerifier: string; redirectUri: string };
  }[] = [];
  answer: Answer;
  beginFails?: UpstreamError;

  constructor(
    readonly id = 'corp',
    readonly issuer = 'https://login.corp.example.com',
    readonly name = 'Corp',
  ) {
    this.answer = async () => ({ identity: this.identity('u-1'), tokens: TOKENS });
  }

  refresh(): Promise<UpstreamTokens> {
    return Promise.reject(new Error('not used'));
  }

  status(): UpstreamStatus {
    return { status: 'up', discovery: 'static' };
  }

  probe(): Promise<UpstreamStatus> {
    return Promise.resolve(this.status());
  }

  identity(subject: string, extra: Partial<UpstreamIdentity> = {}): UpstreamIdentity {
    return { upstreamId: this.id, issuer: this.issuer, subject, ...extra };
  }

  async begin(redirectUri: string): Promise<UpstreamRequest> {
    if (this.beginFails) throw this.beginFails;
    const request = { url: '', state: randomToken(), nonce: randomToken(), codeVerifier: randomToken() };
    request.url = `${this.issuer}/authorize?state=${request.state}`;
    this.begun.push({ ...request, redirectUri });
    return request;
  }

  async complete(callback: URLSearchParams, pending: { nonce: string; codeVerifier: string; redirectUri: string }) {
    this.completed.push({ callback, pending });
    return this.answer(callback);
  }
}

const TOKENS: UpstreamTokens = {
  tokenType: 'Bearer',
  accessToken: 'upstream-access-token-0123456789',
  refreshToken: 'upstream-refresh-token-0123456789',
  idToken: 'eyJhbGciOiJSUzI1NiJ9.upstream-id-token.sig',
  expiresAt: Date.UTC(2030, 0, 1, 1),
};

function setup(options: { upstreams?: StubUpstream[]; config?: Partial<Config>; tenant?: string } = {}) {
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const backend = new MemoryStorage({ clock, cleanupIntervalMs: 0 });
  const storage = withHashedIds(backend);
  const upstreams = options.upstreams ?? [new StubUpstream()];
  const deps: CompleteUpstreamDeps = {
    clock,
    storage,
    config: { ...parseConfig({ issuer: ISSUER }), ...options.config },
    logger: pino({ level: 'silent' }),
    audit: silentAuditor(clock),
    sealer: new Sealer(Buffer.alloc(32, 7).toString('base64')),
    upstreams: new Map(upstreams.map((u) => [u.id, u])),
    ...(options.tenant !== undefined && { tenant: options.tenant }),
  };
  return { clock, backend, storage, deps, upstream: upstreams[0]! };
}

async function newInteraction(deps: CompleteUpstreamDeps): Promise<InteractionRecord> {
  const now = deps.clock.now();
  const interaction: InteractionRecord = {
    id: randomToken(24),
    clientId: 'notes',
    redirectUri: 'https://notes.example.com/callback',
    redirectUriSent: true,
    state: 'client-state',
    scope: ['openid'],
    resource: [],
    codeChallenge: hashToken('verifier'),
    codeChallengeMethod: 'S256',
    prompt: [],
    responseMode: 'query',
    browserBinding: BINDING,
    createdAt: now,
    expiresAt: now + 600_000,
  };
  await deps.storage.saveInteraction(interaction);
  return interaction;
}

/** Goes upstream for a new interaction; returns it and the callback query an upstream would send back. */
async function wentUpstream(deps: CompleteUpstreamDeps, upstream: StubUpstream) {
  const interaction = await newInteraction(deps);
  const location = await goUpstream(interaction, upstream.id, BINDING, deps);
  const request = upstream.begun.at(-1)!;
  expect(location).toBe(request.url);
  const callback = new URLSearchParams({ code: 'upstream-code', state: request.state, iss: upstream.issuer });
  return { interaction, request, callback };
}

/** The client's error redirect, as parameters. */
function clientError(location: string) {
  const url = new URL(location);
  expect(url.origin + url.pathname).toBe('https://notes.example.com/callback');
  return Object.fromEntries(url.searchParams);
}

afterEach(() => {
  vi.useRealTimers();
});

describe('going upstream', () => {
  it('keeps a pending record under the hash of the state, with the verifier and the interaction id sealed', async () => {
    const { backend, deps, upstream } = setup();
    const { interaction, request } = await wentUpstream(deps, upstream);
    expect(request.redirectUri).toBe(`${ISSUER}/upstream/callback`);
    const stored = await backend.getRecord(
      RECORD_KINDS.upstreamAuthorization.name,
      hashToken(`upstream-state:${request.state}`),
    );
    expect(stored).toMatchObject({
      upstreamId: 'corp',
      upstreamIssuer: upstream.issuer,
      clientId: 'notes',
      nonce: request.nonce,
    });
    const text = JSON.stringify(stored);
    expect(text).not.toContain(request.codeVerifier);
    expect(text).not.toContain(interaction.id);
    expect(text).not.toContain(request.state);
    expect(stored!.expiresAt).toBe(deps.clock.now() + 10 * 60_000);
  });

  it('a tenant sends its own callback URL', async () => {
    const { deps, upstream } = setup({ config: { issuer: `${ISSUER}/acme` }, tenant: 'acme' });
    await wentUpstream(deps, upstream);
    expect(upstream.begun[0]!.redirectUri).toBe(upstreamCallbackUrl(`${ISSUER}/acme`));
    expect(upstream.begun[0]!.redirectUri).toBe(`${ISSUER}/acme/upstream/callback`);
  });

  it('an upstream that cannot be reached ends the request on the redirect_uri: temporarily_unavailable', async () => {
    const { deps, upstream } = setup();
    upstream.beginFails = new UpstreamError('unavailable', 'discovery failed');
    const interaction = await newInteraction(deps);
    const params = clientError(await goUpstream(interaction, 'corp', BINDING, deps));
    expect(params).toMatchObject({ error: 'temporarily_unavailable', state: 'client-state', iss: ISSUER });
    expect(await deps.storage.getInteraction(interaction.id)).toBeUndefined();
  });

  it("a device's interaction (RFC 8628) has no redirect: an upstream failure ends on the device page's failed result", async () => {
    const { deps, upstream } = setup();
    upstream.beginFails = new UpstreamError('unavailable', 'discovery failed');
    const interaction = await newInteraction(deps);
    const device = { ...interaction, redirectUri: '', redirectUriSent: false, deviceCodeHash: hashToken('device') };
    await deps.storage.saveInteraction(device);
    expect(await goUpstream(device, 'corp', BINDING, deps)).toBe(`${ISSUER}/device/done?result=failed`);
    expect(await deps.storage.getInteraction(interaction.id)).toBeUndefined();
  });

  it('an unknown upstream id is a page error', async () => {
    const { deps } = setup();
    const interaction = await newInteraction(deps);
    await expect(goUpstream(interaction, 'nope', BINDING, deps)).rejects.toMatchObject({ redirectable: false });
  });
});

describe('the callback', () => {
  it('signs in the mapped user and keeps the tokens sealed on the interaction for the code', async () => {
    const { backend, deps, upstream } = setup();
    const { interaction, request, callback } = await wentUpstream(deps, upstream);
    const outcome = await completeUpstreamSignIn(callback, BINDING, deps);
    expect(outcome.kind).toBe('signed_in');
    if (outcome.kind !== 'signed_in') return;
    expect(outcome.interactionId).toBe(interaction.id);
    // The provider got what begin made, and the same redirect URI.
    expect(upstream.completed[0]!.pending).toEqual({
      nonce: request.nonce,
      codeVerifier: request.codeVerifier,
      redirectUri: `${ISSUER}/upstream/callback`,
    });
    const userId = upstreamUserId(upstream.issuer, 'u-1', undefined);
    expect(outcome.session).toMatchObject({ userId, amr: ['fed'] });
    const saved = (await deps.storage.getInteraction(interaction.id))!;
    expect(saved).toMatchObject({ userId, amr: ['fed'], upstream: { upstreamId: 'corp', subject: userId } });
    // What the store holds of the interaction has none of the upstream's tokens in clear.
    const raw = JSON.stringify(await backend.getRecord(RECORD_KINDS.interaction.name, hashToken(interaction.id)));
    for (const token of [TOKENS.accessToken, TOKENS.refreshToken!, TOKENS.idToken!]) expect(raw).not.toContain(token);
    expect(raw).toContain('sealed:v1:');
  });

  it('is single-use: a replay of the callback is the expired page, and the provider is asked once', async () => {
    const { deps, upstream } = setup();
    const { callback } = await wentUpstream(deps, upstream);
    expect((await completeUpstreamSignIn(callback, BINDING, deps)).kind).toBe('signed_in');
    await expect(completeUpstreamSignIn(callback, BINDING, deps)).rejects.toBeInstanceOf(UpstreamSignInExpired);
    expect(upstream.completed).toHaveLength(1);
  });

  it('of 20 racing callbacks with one state, exactly one completes (takeRecord)', async () => {
    const { deps, upstream } = setup();
    const { callback } = await wentUpstream(deps, upstream);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => completeUpstreamSignIn(callback, BINDING, deps)),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((r) => r.status === 'rejected')) {
      expect(r.reason).toBeInstanceOf(UpstreamSignInExpired);
    }
    expect(upstream.completed).toHaveLength(1);
  });

  it('an expired pending record, an unknown, missing or repeated state, or another browser: the expired page', async () => {
    const { clock, deps, upstream } = setup();
    const { callback } = await wentUpstream(deps, upstream);
    clock.advance(10 * 60_000);
    await expect(completeUpstreamSignIn(callback, BINDING, deps)).rejects.toBeInstanceOf(UpstreamSignInExpired);

    await expect(
      completeUpstreamSignIn(new URLSearchParams({ state: 'made-up' }), BINDING, deps),
    ).rejects.toBeInstanceOf(UpstreamSignInExpired);
    await expect(completeUpstreamSignIn(new URLSearchParams({ code: 'c' }), BINDING, deps)).rejects.toBeInstanceOf(
      UpstreamSignInExpired,
    );
    const twice = await wentUpstream(deps, upstream);
    const repeated = new URLSearchParams(twice.callback);
    repeated.append('state', 'other');
    await expect(completeUpstreamSignIn(repeated, BINDING, deps)).rejects.toBeInstanceOf(UpstreamSignInExpired);

    const stolen = await wentUpstream(deps, upstream);
    await expect(completeUpstreamSignIn(stolen.callback, OTHER_BROWSER, deps)).rejects.toBeInstanceOf(
      UpstreamSignInExpired,
    );
    await expect(completeUpstreamSignIn(stolen.callback, undefined, deps)).rejects.toBeInstanceOf(
      UpstreamSignInExpired,
    );
    expect(upstream.completed).toHaveLength(0);
  });

  it('access_denied upstream lands on the client with access_denied, its state and iss', async () => {
    const { deps, upstream } = setup();
    upstream.answer = async () => {
      throw new UpstreamError('access_denied', 'the user said no');
    };
    const { interaction, callback } = await wentUpstream(deps, upstream);
    const outcome = await completeUpstreamSignIn(callback, BINDING, deps);
    expect(outcome.kind).toBe('redirect');
    if (outcome.kind !== 'redirect') return;
    expect(clientError(outcome.location)).toMatchObject({ error: 'access_denied', state: 'client-state', iss: ISSUER });
    // The request is finished.
    expect(await deps.storage.getInteraction(interaction.id)).toBeUndefined();
  });

  it.each([
    ['unavailable', 'temporarily_unavailable'],
    ['invalid_response', 'server_error'],
  ] as const)('an upstream failing with %s ends the request with %s', async (failure, error) => {
    const { deps, upstream } = setup();
    upstream.answer = async () => {
      throw new UpstreamError(failure, 'no');
    };
    const { callback } = await wentUpstream(deps, upstream);
    const outcome = await completeUpstreamSignIn(callback, BINDING, deps);
    expect(outcome.kind === 'redirect' && clientError(outcome.location).error).toBe(error);
  });

  it('a provider that throws something else, or never answers, still ends on the redirect_uri', async () => {
    const { deps, upstream } = setup();
    upstream.answer = async () => {
      throw new TypeError('bug in the provider');
    };
    const first = await wentUpstream(deps, upstream);
    const crashed = await completeUpstreamSignIn(first.callback, BINDING, deps);
    expect(crashed.kind === 'redirect' && clientError(crashed.location).error).toBe('server_error');

    upstream.answer = () => new Promise(() => {});
    const second = await wentUpstream(deps, upstream);
    vi.useFakeTimers();
    const pending = completeUpstreamSignIn(second.callback, BINDING, deps);
    await vi.advanceTimersByTimeAsync(UPSTREAM_CALL_DEADLINE_MS + 1);
    const hung = await pending;
    expect(hung.kind === 'redirect' && clientError(hung.location).error).toBe('temporarily_unavailable');
  });

  it('mix-up defence: an identity of another upstream, or an upstream whose issuer changed, is refused', async () => {
    const corp = new StubUpstream('corp', 'https://login.corp.example.com');
    const { deps } = setup({ upstreams: [corp] });
    corp.answer = async () => ({
      identity: { upstreamId: 'corp', issuer: 'https://evil.example.com', subject: 'u-1' },
      tokens: TOKENS,
    });
    const first = await wentUpstream(deps, corp);
    const refused = await completeUpstreamSignIn(first.callback, BINDING, deps);
    expect(refused.kind === 'redirect' && clientError(refused.location).error).toBe('server_error');

    const second = await wentUpstream(deps, corp);
    // The config now has another issuer under the same id: the pending record names the old one.
    const moved = new StubUpstream('corp', 'https://login.elsewhere.example.com');
    (deps.upstreams as Map<string, UpstreamProvider>).set('corp', moved);
    const changed = await completeUpstreamSignIn(second.callback, BINDING, deps);
    expect(changed.kind === 'redirect' && clientError(changed.location).error).toBe('server_error');
    expect(moved.completed).toHaveLength(0);
  });

  it('an interaction finished meanwhile (or expired) is the expired page, not a second answer to the client', async () => {
    const { deps, upstream } = setup();
    const { interaction, callback } = await wentUpstream(deps, upstream);
    await deps.storage.takeInteraction(interaction.id);
    await expect(completeUpstreamSignIn(callback, BINDING, deps)).rejects.toBeInstanceOf(UpstreamSignInExpired);
  });

  it('the interaction is kept alive while the user is upstream', async () => {
    const { clock, deps, upstream } = setup();
    const interaction = await newInteraction(deps);
    clock.advance(9 * 60_000);
    await goUpstream(interaction, 'corp', BINDING, deps);
    clock.advance(5 * 60_000);
    const callback = new URLSearchParams({ state: upstream.begun[0]!.state, code: 'c' });
    expect((await completeUpstreamSignIn(callback, BINDING, deps)).kind).toBe('signed_in');
  });
});

describe('identity -> user', () => {
  it('is stable, per upstream issuer and per tenant', async () => {
    const a = upstreamUserId('https://a.example.com', 'sub-1', undefined);
    expect(upstreamUserId('https://a.example.com', 'sub-1', undefined)).toBe(a);
    expect(upstreamUserId('https://b.example.com', 'sub-1', undefined)).not.toBe(a);
    expect(upstreamUserId('https://a.example.com', 'sub-2', undefined)).not.toBe(a);
    expect(upstreamUserId('https://a.example.com', 'sub-1', 'acme')).not.toBe(a);
    // No ambiguity where issuer and subject meet.
    expect(upstreamUserId('https://a.example.com|x', 'y', undefined)).not.toBe(
      upstreamUserId('https://a.example.com', 'x|y', undefined),
    );
  });

  it('the same upstream user twice is the same user; another issuer with the same subject is another', async () => {
    const corp = new StubUpstream('corp', 'https://login.corp.example.com');
    const other = new StubUpstream('other', 'https://login.other.example.com');
    const { deps } = setup({ upstreams: [corp, other] });
    const first = await upstreamUser(corp.identity('s1', { email: 'a@corp.example', emailVerified: true }), deps);
    const again = await upstreamUser(corp.identity('s1', { email: 'a@corp.example', emailVerified: true }), deps);
    const elsewhere = await upstreamUser(other.identity('s1'), deps);
    expect(again.id).toBe(first.id);
    expect(first).toMatchObject({
      username: 'corp:s1',
      passwordHash: '',
      email: 'a@corp.example',
      emailVerified: true,
    });
    expect(elsewhere.id).not.toBe(first.id);
    expect(elsewhere.username).toBe('other:s1');
    // The upstream's profile follows it.
    const renamed = await upstreamUser(corp.identity('s1', { name: 'Ann' }), deps);
    expect(renamed).toMatchObject({ id: first.id, name: 'Ann' });
    expect(renamed.email).toBeUndefined();
  });

  it('a local user already named <upstream>:<subject> keeps the name; the upstream user gets another', async () => {
    const { deps, upstream } = setup();
    await deps.storage.saveUser(localUser('squatter', 'corp:s1'));
    const user = await upstreamUser(upstream.identity('s1'), deps);
    expect(user.username).toBe(`corp:s1#${user.id.slice(0, 8)}`);
    expect((await deps.storage.getUserByUsername('corp:s1'))!.id).toBe('squatter');
  });

  it('links to a local account by verified email only when the upstream says linkByVerifiedEmail', async () => {
    const identity = (sub: string, emailVerified = true) => ({
      upstreamId: 'corp',
      issuer: 'https://login.corp.example.com',
      subject: sub,
      email: 'Alice@Example.com',
      emailVerified,
    });

    const off = setup();
    await off.deps.storage.saveUser(localUser('alice-id', 'alice', 'alice@example.com'));
    expect((await upstreamUser(identity('s1'), off.deps)).id).not.toBe('alice-id');

    const on = setup({ config: { upstreams: [{ id: 'corp', linkByVerifiedEmail: true }] } as Partial<Config> });
    await on.deps.storage.saveUser(localUser('alice-id', 'alice', 'alice@example.com'));
    // Not verified upstream: no link.
    expect((await upstreamUser(identity('s2', false), on.deps)).id).not.toBe('alice-id');
    // Verified: linked, and the link is followed next time, even once the setting is off.
    expect((await upstreamUser(identity('s3'), on.deps)).id).toBe('alice-id');
    const offAgain = { ...on.deps, config: { ...on.deps.config, upstreams: [] } as unknown as Config };
    expect((await upstreamUser({ ...identity('s3'), email: 'changed@example.com' }, offAgain)).id).toBe('alice-id');
    // An identity with its own user already is not re-linked.
    expect((await upstreamUser(identity('s2'), on.deps)).id).not.toBe('alice-id');
    // deleteUser removes the link with the user.
    await on.storage.deleteUser('alice-id');
    expect(
      await on.deps.storage.getRecord(RECORD_KINDS.upstreamLink.name, linkIdOf('https://login.corp.example.com', 's3')),
    ).toBeUndefined();
  });

  it('does not link when two local accounts have the email, nor to an upstream-made user', async () => {
    const { deps } = setup({ config: { upstreams: [{ id: 'corp', linkByVerifiedEmail: true }] } as Partial<Config> });
    await deps.storage.saveUser(localUser('a1', 'a1', 'same@example.com'));
    await deps.storage.saveUser(localUser('a2', 'a2', 'same@example.com'));
    await deps.storage.saveUser({ ...localUser('up', 'other:x', 'solo@example.com'), passwordHash: '' });
    const id = { upstreamId: 'corp', issuer: 'https://login.corp.example.com', emailVerified: true };
    expect(['a1', 'a2']).not.toContain(
      (await upstreamUser({ ...id, subject: 's1', email: 'same@example.com' }, deps)).id,
    );
    expect((await upstreamUser({ ...id, subject: 's2', email: 'solo@example.com' }, deps)).id).not.toBe('up');
  });

  it('hasLocalUsers: users of upstreams do not count; the answer is kept 30 seconds', async () => {
    const { clock, deps, upstream } = setup();
    await upstreamUser(upstream.identity('s1'), deps);
    expect(await hasLocalUsers(deps)).toBe(false);
    await deps.storage.saveUser(localUser('l1', 'local'));
    expect(await hasLocalUsers(deps)).toBe(false);
    clock.advance(30_000);
    expect(await hasLocalUsers(deps)).toBe(true);
  });
});

function localUser(id: string, username: string, email?: string): UserRecord {
  return {
    id,
    username,
    passwordHash: 'scrypt$15$8$1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNo',
    ...(email !== undefined && { email, emailVerified: true }),
    createdAt: 0,
    updatedAt: 0,
  };
}

const linkIdOf = (issuer: string, subject: string) => hashToken(JSON.stringify(['upstream-link', issuer, subject]));

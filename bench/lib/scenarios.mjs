/**
 * The scenarios, each written once against standard OAuth endpoints found through discovery, so Gatehouse and
 * oidc-provider are driven by exactly the same requests.
 */
import { generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { JWT_BEARER, OPAQUE_RESOURCE, RESOURCE } from './targets.mjs';
import {
  basicAuth,
  browserAuthorize,
  CookieJar,
  createPool,
  pkce,
  postJson,
  randomState,
  readForm,
  send,
} from './http.mjs';
import { DONE, runCannon, runLoop } from './load.mjs';

const REQUEST_SCOPE = 'offline_access bench:read';

/** The floor's target kinds: `floor` (the irreducible work of the row) and `floor-http` (HTTP + client auth only). */
export const FLOOR_KINDS = new Set(['floor', 'floor-http']);

/** Discovery, a connection pool and client credentials for a started target. */
export async function connect(target, identity, concurrency) {
  if (FLOOR_KINDS.has(target.kind)) {
    // The floor (bench/servers/floor.mjs) has no discovery and no users. Its HTTP-only cells (kind `floor-http`) use
    // the routes under /http-only: the same request handling and client authentication, a constant answer.
    const prefix = target.kind === 'floor-http' ? '/http-only' : '';
    target.endpoints = { token: `${prefix}/token`, introspect: `${prefix}/introspect`, revoke: '/revoke' };
    target.pool = createPool(target.origin, concurrency + 2);
    target.identity = identity;
    target.auth = { authorization: basicAuth(identity.client.client_id, identity.client.client_secret) };
    return;
  }
  const res = await fetch(`${target.origin}/.well-known/openid-configuration`);
  if (res.status !== 200) throw new Error(`discovery: HTTP ${res.status}`);
  const meta = await res.json();
  const path = (url) => {
    const u = new URL(url);
    if (u.origin !== target.origin) throw new Error(`endpoint ${url} is not on ${target.origin}`);
    return u.pathname;
  };
  target.meta = meta;
  target.endpoints = {
    authorize: path(meta.authorization_endpoint),
    token: path(meta.token_endpoint),
    introspect: path(meta.introspection_endpoint),
    revoke: meta.revocation_endpoint ? path(meta.revocation_endpoint) : undefined,
    jwks: meta.jwks_uri,
  };
  target.pool = createPool(target.origin, concurrency + 2);
  target.identity = identity;
  target.auth = { authorization: basicAuth(identity.client.client_id, identity.client.client_secret) };
}

function authorizePath(target, challenge, state) {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: target.identity.client.client_id,
    redirect_uri: target.identity.client.redirect_uris[0],
    scope: REQUEST_SCOPE,
    resource: RESOURCE,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  return `${target.endpoints.authorize}?${q}`;
}

/** Redeems the code of a callback URL; returns the token response. */
async function redeem(target, callback, state, verifier) {
  if (callback.searchParams.get('state') !== state)
    throw new Error(`callback state mismatch: ${callback.href.slice(0, 200)}`);
  const code = callback.searchParams.get('code');
  if (!code) throw new Error(`no code in callback: ${callback.href.slice(0, 300)}`);
  const tokens = await postJson(
    target.pool,
    target.endpoints.token,
    {
      grant_type: 'authorization_code',
      code,
      redirect_uri: target.identity.client.redirect_uris[0],
      code_verifier: verifier,
    },
    target.auth,
  );
  if (!tokens.access_token || !tokens.refresh_token)
    throw new Error(`code exchange gave no access/refresh token: ${JSON.stringify(tokens).slice(0, 200)}`);
  return tokens;
}

/** Authorization with a signed-in, consented browser: the authorize request must redirect straight to the client. */
async function silentCode(target, vu) {
  const { verifier, challenge } = pkce();
  const state = randomState();
  const res = await send(target.pool, { path: authorizePath(target, challenge, state), jar: vu.jar });
  const location = res.headers.location;
  if (res.status < 300 || res.status >= 400 || !location)
    throw new Error(`authorize: HTTP ${res.status} ${res.text.slice(0, 200)}`);
  const callback = new URL(location, target.origin);
  if (!callback.href.startsWith(target.identity.client.redirect_uris[0])) {
    throw new Error(`authorize did not go straight back to the client (went to ${callback.pathname})`);
  }
  return redeem(target, callback, state, verifier);
}

/**
 * Signs in `count` virtual users through the real login (and, for the first, consent) forms; each keeps its cookie
 * jar. The first goes alone so consent is given once; the others only sign in.
 */
export async function signInUsers(target, count) {
  const one = async () => {
    const jar = new CookieJar();
    const { verifier, challenge } = pkce();
    const state = randomState();
    const callback = await browserAuthorize(
      target.pool,
      target.origin,
      target.origin + authorizePath(target, challenge, state),
      jar,
      target.identity.user,
    );
    const tokens = await redeem(target, callback, state, verifier);
    return { jar, refreshToken: tokens.refresh_token };
  };
  const vus = [await one()];
  while (vus.length < count)
    vus.push(...(await Promise.all(Array.from({ length: Math.min(4, count - vus.length) }, one))));
  target.vus = vus;
}

/** A fresh client_credentials access token for `resource`. */
export async function clientCredentialsToken(target, resource = RESOURCE) {
  const tokens = await postJson(
    target.pool,
    target.endpoints.token,
    { grant_type: 'client_credentials', scope: 'bench:read', resource },
    target.auth,
  );
  if (!tokens.access_token) throw new Error('client_credentials gave no access token');
  return tokens.access_token;
}

/**
 * A DPoP proof signer for one key (RFC 9449 §4.2): ES256 with node:crypto's asynchronous sign (libuv threadpool), so
 * making a proof costs the bench process little event-loop time. Proofs are made on the fly, one per request, inside
 * the measured latency (a pool made ahead would go stale: servers accept a proof for 60 s, oidc-provider 300 s).
 */
export async function dpopSigner() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  const header = Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: { kty, crv, x, y } })).toString(
    'base64url',
  );
  return (htm, htu) => {
    const payload = Buffer.from(
      JSON.stringify({ jti: randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000) }),
    ).toString('base64url');
    const input = `${header}.${payload}`;
    return new Promise((resolve, reject) =>
      sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }, (err, sig) =>
        err ? reject(err) : resolve(`${input}.${sig.toString('base64url')}`),
      ),
    );
  };
}

const ccBody = new URLSearchParams({
  grant_type: 'client_credentials',
  scope: 'bench:read',
  resource: RESOURCE,
}).toString();

/** First-run guess of a distinct-token row's rate (per s) when neither it nor its hint row was measured yet. */
const DEFAULT_RATE = 10_000;
/**
 * Headroom over the expected rate when minting a run's supply: 1.5 × the row's own earlier rate or a similar row's.
 * What a run leaves unsent is kept for the next one, so the headroom costs minting once, not every run; a run that
 * still runs dry (a loaded machine swings by 2×) is measured over the time its supply lasted.
 */
const SUPPLY_HEADROOM = 1.5;
const HINT_HEADROOM = 1.5;
/** Most tokens or assertions minted for one run. */
const MAX_SUPPLY = 300_000;

/**
 * How many distinct tokens (or assertions) one run of row `own` on `target` needs: over the warm-up and the measured
 * window, 1.5 × the highest rate this target reached on that row so far (`target.observed`, filled in by the run
 * loop), else 1.5 × the highest on the `hints` rows, else DEFAULT_RATE; plus one per connection. Should a run still use them all up, its users stop
 * and the run is measured over the time it took (`exhausted` in the JSON): a token is never sent twice.
 */
function supplySize(target, s, [own, ...hints]) {
  const seen = target.observed?.[own];
  const rate = seen
    ? seen * SUPPLY_HEADROOM
    : Math.max(0, ...hints.map((id) => target.observed?.[id] ?? 0)) * HINT_HEADROOM || DEFAULT_RATE;
  return Math.min(MAX_SUPPLY, Math.ceil((rate * (s.warmupMs + s.durationMs)) / 1000) + s.concurrency);
}

/** `n` results of `mintOne()`, `concurrency` at a time (outside any measured window). */
async function mintMany(n, concurrency, mintOne) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await mintOne(i);
      }
    }),
  );
  return out;
}

/**
 * The unsent items of one kind on one target (`access`: access tokens, `id_jag`: assertions), kept from run to run:
 * a token minted and never sent is still never-seen, so a run tops the supply up to what it needs instead of minting
 * it all, and what it leaves goes to the next run. Items older than `maxAgeMs` are dropped (assertions expire).
 */
function supplyOf(target, kind, maxAgeMs = Infinity) {
  target.supplies ??= {};
  let sup = target.supplies[kind];
  if (!sup || performance.now() - sup.oldest > maxAgeMs) sup = target.supplies[kind] = { items: [], next: 0 };
  return sup;
}

/** Tops `sup` up to `n` unsent items with `mintOne()`, `concurrency` at a time; returns how many it minted. */
async function topUp(sup, n, concurrency, mintOne) {
  sup.items = sup.items.slice(sup.next);
  sup.next = 0;
  const missing = n - sup.items.length;
  if (missing <= 0) return 0;
  if (sup.items.length === 0) sup.oldest = performance.now();
  sup.items = sup.items.concat(await mintMany(missing, concurrency, mintOne));
  return missing;
}

/**
 * Gatehouse remembers the last tokens it minted as verified (src/core/access-token.ts VERIFIED_MAX, 10,000 per key
 * set: a token introspected by the process that minted it skips the signature check). After minting a supply, this
 * many more tokens are minted and thrown away, so that no token the row sends is still in that cache: every one
 * costs what a token minted by another replica costs.
 */
const ISSUED_CACHE_FLUSH = 10_000;

/**
 * Distinct, never-seen access tokens for the introspection and revocation rows: client_credentials tokens minted
 * before the run (outside the warm-up and the measured window), each sent once. oidc-provider gets opaque ones (the
 * only access tokens it introspects). On Gatehouse, ISSUED_CACHE_FLUSH throwaway tokens follow any new ones.
 */
async function distinctAccessTokens(target, s, rowIds) {
  const resource = target.kind === 'oidc-provider' ? OPAQUE_RESOURCE : RESOURCE;
  const sup = supplyOf(target, 'access');
  const t0 = performance.now();
  const minted = await topUp(sup, supplySize(target, s, rowIds), s.concurrency, () =>
    clientCredentialsToken(target, resource),
  );
  let flushed = 0;
  if (minted > 0 && target.kind === 'gatehouse') {
    await mintMany(ISSUED_CACHE_FLUSH, s.concurrency, () => clientCredentialsToken(target, resource));
    flushed = ISSUED_CACHE_FLUSH;
  }
  return { sup, supply: sup.items.length, minted, flushed, mintedMs: performance.now() - t0 };
}

/**
 * A closed loop of `concurrency` users, each taking the next unsent item of `sup` every time (and never putting it
 * back); DONE when none is left.
 */
function consumeOnce(sup, s, send1) {
  return runLoop({
    vus: Array.from({ length: s.concurrency }, () => ({})),
    durationMs: s.durationMs,
    warmupMs: s.warmupMs,
    onMeasured: s.onMeasured,
    onWindowEnd: s.onWindowEnd,
    iterate: async () => {
      if (sup.next >= sup.items.length) return DONE;
      const item = sup.items[sup.next];
      sup.items[sup.next++] = undefined; // never sent again, and garbage once sent
      await send1(item);
    },
  });
}

/**
 * Each scenario: `run(target, settings)` returns { rate, p50, p99, errors, error }. `settings` holds concurrency,
 * durationMs, warmupMs, onMeasured and onWindowEnd (call them when the measured window starts and when it ends).
 * `kinds`: the targets a row runs on (default Gatehouse and oidc-provider; the floor's kinds `floor` and
 * `floor-http` serve client_credentials, introspect_distinct and revoke_distinct).
 */
export const SCENARIOS = [
  {
    id: 'client_credentials',
    label: 'a. client_credentials token',
    unit: 'req/s',
    driver: 'autocannon',
    kinds: ['gatehouse', 'oidc-provider', 'floor', 'floor-http'],
    async run(target, s) {
      await clientCredentialsToken(target); // fails loudly if the grant does not work at all
      return runCannon({
        url: target.origin + target.endpoints.token,
        headers: target.auth,
        body: ccBody,
        connections: s.concurrency,
        durationMs: s.durationMs,
        warmupMs: s.warmupMs,
        onMeasured: s.onMeasured,
        onWindowEnd: s.onWindowEnd,
      });
    },
  },
  {
    id: 'dpop_client_credentials',
    label: 'a. client_credentials token with a DPoP proof (RFC 9449)',
    unit: 'req/s',
    driver: 'undici',
    async run(target, s) {
      const proof = await dpopSigner();
      const htu = target.meta.token_endpoint;
      const request = async () => {
        const tokens = await postJson(
          target.pool,
          target.endpoints.token,
          Object.fromEntries(new URLSearchParams(ccBody)),
          {
            ...target.auth,
            dpop: await proof('POST', htu),
          },
        );
        if (String(tokens.token_type).toLowerCase() !== 'dpop')
          throw new Error(`expected a DPoP-bound token, got token_type ${tokens.token_type}`);
      };
      await request(); // fails loudly if the server does not bind tokens to the proof
      return runLoop({
        vus: Array.from({ length: s.concurrency }, () => ({})),
        durationMs: s.durationMs,
        warmupMs: s.warmupMs,
        onMeasured: s.onMeasured,
        onWindowEnd: s.onWindowEnd,
        iterate: request,
      });
    },
  },
  {
    id: 'code_flow',
    label: 'b. code flow: authorize → code → token (PKCE) → refresh',
    unit: 'flows/s',
    driver: 'undici',
    async run(target, s) {
      return runLoop({
        vus: target.vus,
        durationMs: s.durationMs,
        warmupMs: s.warmupMs,
        onMeasured: s.onMeasured,
        onWindowEnd: s.onWindowEnd,
        iterate: async (vu) => {
          const tokens = await silentCode(target, vu);
          const next = await postJson(
            target.pool,
            target.endpoints.token,
            { grant_type: 'refresh_token', refresh_token: tokens.refresh_token },
            target.auth,
          );
          if (!next.access_token || !next.refresh_token) throw new Error('refresh gave no token pair');
        },
      });
    },
  },
  {
    id: 'sign_in',
    label: 'b. sign-in: login form POST (scrypt)',
    unit: 'sign-ins/s',
    driver: 'undici',
    // A handful of scrypt hashes per second: at least 1 s so a window counts more than a few. Four in flight (the
    // libuv threadpool size) keeps the CPU saturated without measuring queueing as latency.
    minDurationMs: 1000,
    async run(target, s) {
      const vus = Array.from({ length: 4 }, () => ({}));
      return runLoop({
        vus,
        durationMs: s.durationMs,
        warmupMs: s.warmupMs,
        onMeasured: s.onMeasured,
        onWindowEnd: s.onWindowEnd,
        // New browser each time: authorize → login page → POST username/password; the POST's latency is recorded.
        iterate: async () => {
          const jar = new CookieJar();
          const { challenge } = pkce();
          const r1 = await send(target.pool, { path: authorizePath(target, challenge, randomState()), jar });
          if (r1.status < 300 || r1.status >= 400) throw new Error(`authorize: HTTP ${r1.status}`);
          const pageUrl = new URL(r1.headers.location, target.origin);
          if (pageUrl.origin !== target.origin) throw new Error('authorize skipped the login page');
          const r2 = await send(target.pool, { path: pageUrl.pathname + pageUrl.search, jar });
          if (r2.status !== 200 || !r2.text.includes('name="password"'))
            throw new Error(`login page: HTTP ${r2.status}`);
          const form = readForm(r2.text, pageUrl);
          const body = new URLSearchParams({
            ...form.fields,
            username: target.identity.user.username,
            password: target.identity.user.password,
          }).toString();
          const t0 = performance.now();
          const r3 = await send(target.pool, {
            path: form.action.pathname + form.action.search,
            method: 'POST',
            jar,
            body,
          });
          const latency = performance.now() - t0;
          if (r3.status < 300 || r3.status >= 400)
            throw new Error(`login POST: HTTP ${r3.status} ${r3.text.slice(0, 200)}`);
          return latency;
        },
      });
    },
  },
  {
    id: 'refresh',
    label: 'c. refresh-token rotation',
    unit: 'rotations/s',
    driver: 'undici',
    async run(target, s) {
      // Each virtual user starts from a fresh refresh token of its own and follows its rotation chain.
      await Promise.all(target.vus.map(async (vu) => (vu.refreshToken = (await silentCode(target, vu)).refresh_token)));
      return runLoop({
        vus: target.vus,
        durationMs: s.durationMs,
        warmupMs: s.warmupMs,
        onMeasured: s.onMeasured,
        onWindowEnd: s.onWindowEnd,
        iterate: async (vu) => {
          const next = await postJson(
            target.pool,
            target.endpoints.token,
            { grant_type: 'refresh_token', refresh_token: vu.refreshToken },
            target.auth,
          );
          if (!next.refresh_token) throw new Error('rotation gave no refresh token');
          vu.refreshToken = next.refresh_token;
        },
        recover: async (vu) => {
          vu.refreshToken = (await silentCode(target, vu)).refresh_token;
        },
      });
    },
  },
  {
    id: 'introspect_at',
    label: 'd. introspection of an access token',
    unit: 'req/s',
    driver: 'autocannon',
    async run(target, s) {
      // oidc-provider refuses to introspect JWT access tokens, so it gets an opaque one; Gatehouse only issues JWTs.
      const token = await clientCredentialsToken(target, target.kind === 'oidc-provider' ? OPAQUE_RESOURCE : RESOURCE);
      const body = new URLSearchParams({ token, token_type_hint: 'access_token' }).toString();
      await checkActive(target, body);
      return runCannon({
        url: target.origin + target.endpoints.introspect,
        headers: target.auth,
        body,
        connections: s.concurrency,
        durationMs: s.durationMs,
        warmupMs: s.warmupMs,
        onMeasured: s.onMeasured,
        onWindowEnd: s.onWindowEnd,
      });
    },
  },
  {
    id: 'introspect_rt',
    label: 'd. introspection of a refresh token',
    unit: 'req/s',
    driver: 'autocannon',
    async run(target, s) {
      const token = (await silentCode(target, target.vus[0])).refresh_token;
      const body = new URLSearchParams({ token, token_type_hint: 'refresh_token' }).toString();
      await checkActive(target, body);
      return runCannon({
        url: target.origin + target.endpoints.introspect,
        headers: target.auth,
        body,
        connections: s.concurrency,
        durationMs: s.durationMs,
        warmupMs: s.warmupMs,
        onMeasured: s.onMeasured,
        onWindowEnd: s.onWindowEnd,
      });
    },
  },
  {
    id: 'introspect_distinct',
    label: 'd. introspection of distinct, never-seen access tokens',
    unit: 'req/s',
    driver: 'undici',
    kinds: ['gatehouse', 'oidc-provider', 'floor', 'floor-http'],
    async run(target, s) {
      const { sup, ...supply } = await distinctAccessTokens(target, s, [this.id, 'client_credentials']);
      const r = await consumeOnce(sup, s, async (token) => {
        const res = await send(target.pool, {
          path: target.endpoints.introspect,
          method: 'POST',
          headers: target.auth,
          body: `token=${encodeURIComponent(token)}&token_type_hint=access_token`,
        });
        if (res.status !== 200 || !res.text.includes('"active":true'))
          throw new Error(`introspection: HTTP ${res.status} ${res.text.slice(0, 200)}`);
      });
      return { ...r, ...supply };
    },
  },
  {
    id: 'revoke_distinct',
    label: 'd. revocation of distinct, never-seen access tokens',
    unit: 'req/s',
    driver: 'undici',
    // The floor's revocation is already HTTP + client auth only: no `floor-http` cell.
    kinds: ['gatehouse', 'oidc-provider', 'floor'],
    async run(target, s) {
      if (!target.endpoints.revoke) throw new Error('no revocation_endpoint in discovery');
      const { sup, ...supply } = await distinctAccessTokens(target, s, [this.id, 'introspect_distinct']);
      const first = sup.items[sup.next];
      const r = await consumeOnce(sup, s, async (token) => {
        const res = await send(target.pool, {
          path: target.endpoints.revoke,
          method: 'POST',
          headers: target.auth,
          body: `token=${encodeURIComponent(token)}&token_type_hint=access_token`,
        });
        if (res.status !== 200) throw new Error(`revocation: HTTP ${res.status} ${res.text.slice(0, 200)}`);
      });
      // A revocation answers 200 whatever it did (RFC 7009 §2.2): check that the first token is really revoked. The
      // floor has no store (its ceiling is "answer 200"), so it has nothing to check.
      if (target.kind === 'floor') return { ...r, ...supply };
      const check = await send(target.pool, {
        path: target.endpoints.introspect,
        method: 'POST',
        headers: target.auth,
        body: `token=${encodeURIComponent(first)}&token_type_hint=access_token`,
      });
      if (check.status !== 200 || JSON.parse(check.text).active !== false)
        throw new Error(`a revoked token still introspects active: HTTP ${check.status} ${check.text.slice(0, 200)}`);
      return { ...r, ...supply };
    },
  },
  {
    id: 'id_jag',
    label: 'g. ID-JAG: jwt-bearer grant with an Identity Assertion JWT Authorization Grant',
    unit: 'req/s',
    driver: 'undici',
    // oidc-provider has no ID-JAG: the row is compared with Gatehouse's own client_credentials row, per store.
    kinds: ['gatehouse'],
    async run(target, s) {
      const idp = target.idp;
      if (!idp) throw new Error('no enterprise IdP configured for this target');
      // Distinct assertions (each jti is single use), signed before the run by the bench's IdP; unsent ones are kept
      // for the next run for 4 minutes of their 5-minute lifetime.
      const sup = supplyOf(target, 'id_jag', 240_000);
      const t0 = performance.now();
      const sign1 = async () =>
        idp.sign({
          sub: 'alice@idp.bench.example',
          aud: target.issuer,
          client_id: target.identity.client.client_id,
          resource: RESOURCE,
          scope: 'bench:read',
        });
      const minted = await topUp(sup, supplySize(target, s, [this.id, 'client_credentials']), 1, sign1);
      const supply = { supply: sup.items.length, minted, mintedMs: performance.now() - t0 };
      const r = await consumeOnce(sup, s, async (assertion) => {
        const tokens = await postJson(
          target.pool,
          target.endpoints.token,
          { grant_type: JWT_BEARER, assertion },
          target.auth,
        );
        if (!tokens.access_token) throw new Error('jwt-bearer gave no access token');
      });
      return { ...r, ...supply };
    },
  },
];

async function checkActive(target, body) {
  const res = await send(target.pool, {
    path: target.endpoints.introspect,
    method: 'POST',
    headers: target.auth,
    body,
  });
  if (res.status !== 200 || JSON.parse(res.text).active !== true)
    throw new Error(`introspection did not answer active: HTTP ${res.status} ${res.text.slice(0, 200)}`);
}

/**
 * Shared pieces of the property-based (fast-check) fuzz tests: a Gatehouse driven with `app.inject` on the memory
 * store and (fewer cases) on PostgreSQL, value arbitraries built from the real parameter names with hostile values,
 * and the checks every response must pass: no 5xx, answered within 2 s, no stack trace, an RFC error code.
 *
 * Runs per property: FUZZ_RUNS (default 300; `npm run fuzz` uses 5000). FUZZ_SEED replays a failure (fast-check
 * prints the seed and path of a counterexample).
 */
import { randomBytes, createHash } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import { expect } from 'vitest';
import type { InjectOptions } from 'fastify';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { hashToken, randomId, randomToken } from '../../src/core/crypto.js';
import { createGatehouse, createLogger, type Gatehouse } from '../../src/server.js';
import { requireService } from '../helpers/services.js';
import { ALICE, BOB } from '../helpers/server.js';

export const RUNS = Math.max(1, Number(process.env.FUZZ_RUNS ?? 300));
if (process.env.FUZZ_SEED) fc.configureGlobal({ seed: Number(process.env.FUZZ_SEED) });

export const ISSUER = 'http://localhost:9999';
export const REDIRECT = 'http://127.0.0.1/callback';
/** Confidential clients (secrets >= 32 chars get the fast keyed hash) and a public one. */
export const SVC = { id: 'svc', secret: 's'.repeat(20) + randomBytes(16).toString('hex') };
export const WEB = { id: 'web', secret: 'w'.repeat(20) + randomBytes(16).toString('hex') };
export const APP = { id: 'app' };

export interface FuzzStore {
  kind: 'memory' | 'postgres';
  /** Share of RUNS for this store: PostgreSQL is slower, so it gets a smaller run. */
  share: number;
  /**
   * Whether string arbitraries may contain U+0000 (on every store: the HTTP edge refuses it, and SQL maps SQLSTATE
   * 22021/22P05 to invalid_request, so PostgreSQL text never sees one).
   */
  nul: boolean;
  service?: 'postgres';
}

export const FUZZ_STORES: FuzzStore[] = [
  { kind: 'memory', share: 1, nul: true },
  { kind: 'postgres', share: 0.2, nul: true, service: 'postgres' },
];

export const runsFor = (store: FuzzStore, share = 1) => Math.max(5, Math.round(RUNS * store.share * share));
/** Test timeout for a property of `runs` cases (each bounded by 2 s, typically a few ms). */
export const timeoutFor = (runs: number) => 60_000 + runs * 100;

export interface FuzzServer {
  gatehouse: Gatehouse;
  inject(opts: InjectOptions): Promise<Sent>;
  close(): Promise<void>;
}

export interface Sent {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
  /** Parsed JSON body, or undefined when it is not JSON. */
  json: Record<string, unknown> | undefined;
  ms: number;
  /** What was sent, for failure messages. */
  request: string;
}

const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** Starts a Gatehouse (not listening) on the store; undefined when the store's service is absent (skip). */
export async function startFuzzServer(
  store: FuzzStore,
  config: Partial<ConfigInput> = {},
): Promise<FuzzServer | undefined> {
  if (store.service && !(await requireService(store.service))) return undefined;
  const schema = `gh_fuzz_${randomBytes(4).toString('hex')}`;
  const storage: Partial<ConfigInput> =
    store.kind === 'postgres' ? { storage: PG_URL, postgres: { schema } } : { storage: 'memory' };
  const cfg = parseConfig({
    logLevel: 'silent',
    passwordHashing: { log2N: 14 },
    users: [ALICE, BOB],
    scopes: ['mcp:read', 'mcp:write'],
    // No per-address limit: every fuzz case comes from the same address (the limit has its own tests).
    registration: { allowClientCredentials: true, rateLimit: { perIp: 0 } },
    clients: [
      {
        client_id: SVC.id,
        client_secret: SVC.secret,
        redirect_uris: [REDIRECT],
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'openid profile email offline_access mcp:read mcp:write',
      },
      {
        client_id: WEB.id,
        client_secret: WEB.secret,
        redirect_uris: [REDIRECT, 'http://127.0.0.1/other'],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'client_secret_post',
        scope: 'openid profile mcp:read',
      },
      {
        client_id: APP.id,
        redirect_uris: [REDIRECT],
        grant_types: ['authorization_code', 'refresh_token'],
        token_endpoint_auth_method: 'none',
        scope: 'openid mcp:read',
      },
    ],
    ...storage,
    ...config,
    port: 9999,
    host: '127.0.0.1',
    issuer: ISSUER,
  });
  const gatehouse = await createGatehouse(cfg, { logger: createLogger('silent') });
  await gatehouse.app.ready();
  return {
    gatehouse,
    inject: (opts) => timedInject(gatehouse, opts),
    async close() {
      await gatehouse.close();
      if (store.kind === 'postgres') {
        const admin = new pg.Client({ connectionString: PG_URL });
        await admin.connect();
        await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await admin.end();
      }
    },
  };
}

const LIMIT_MS = 2000;

/** One request; rejects when it takes 2 s or more (a hang fails the case, not the whole test run). */
async function timedInject(gatehouse: Gatehouse, opts: InjectOptions): Promise<Sent> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${LIMIT_MS} ms: ${describeRequest(opts)}`)), LIMIT_MS);
  });
  try {
    const res = await Promise.race([gatehouse.app.inject(opts), timeout]);
    const ms = performance.now() - started;
    let json: Record<string, unknown> | undefined;
    if (String(res.headers['content-type'] ?? '').includes('json') && res.body) {
      try {
        json = JSON.parse(res.body) as Record<string, unknown>;
      } catch {
        json = undefined;
      }
    }
    return { status: res.statusCode, headers: res.headers, body: res.body, json, ms, request: describeRequest(opts) };
  } finally {
    clearTimeout(timer);
  }
}

function describeRequest(opts: InjectOptions): string {
  const payload =
    opts.payload === undefined
      ? ''
      : typeof opts.payload === 'string'
        ? opts.payload
        : Buffer.isBuffer(opts.payload)
          ? opts.payload.toString('latin1')
          : JSON.stringify(opts.payload);
  return `${opts.method ?? 'GET'} ${String(opts.url)} headers=${JSON.stringify(opts.headers ?? {})} body=${JSON.stringify(payload.slice(0, 300))}${payload.length > 300 ? `…(${payload.length})` : ''}`;
}

/** FUZZ_STATS=1 prints how often each outcome came up, to see which code paths the arbitraries reach. */
const STATS = process.env.FUZZ_STATS ? new Map<string, number>() : undefined;
export function printStats(label: string): void {
  if (!STATS) return;
  const lines = [...STATS].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${String(n).padStart(6)}  ${k}`);
  console.log(`${label}\n${lines.join('\n')}`);
  STATS.clear();
}

/** A stack frame or an error class name in a body means an internal error leaked. */
const STACK = [
  /\bat [^\n]*\([^\n]*:\d+:\d+\)/,
  /^\s+at [^\n]+:\d+:\d+$/m,
  /\b(?:Type|Reference|Range|Syntax|Internal|Aggregate)?Error: /,
  /node_modules\//,
  /\/src\/[\w/-]+\.ts\b/,
];

/**
 * The checks for every response: below 500, within 2 s, no stack trace, and when it is a JSON error its `error` is
 * one of `allowed` (the endpoint's RFC codes).
 */
export function expectSafe(res: Sent, allowed: readonly string[]): void {
  if (STATS) {
    // HTML pages: the error code and description of the error page, or the page's alert.
    const page =
      /<code>([^<]*)<\/code><\/p><p>([^<]*)/.exec(res.body) ??
      /role="alert">([^<]*)/.exec(res.body) ??
      /<h1>([^<]*)/.exec(res.body);
    const detail = res.json
      ? `${res.json.error ?? ''} ${String(res.json.error_description ?? '')}`
      : page
        ? page.slice(1).filter(Boolean).join(' ')
        : String(res.headers.location ?? '').replace(/[?&](code|state|iss)=[^&]*/g, '');
    const key = `${res.status} ${detail.slice(0, 90)}`;
    STATS.set(key, (STATS.get(key) ?? 0) + 1);
  }
  const where = `${res.request}\n-> ${res.status} ${res.body.slice(0, 500)}`;
  expect(res.status, where).toBeLessThan(500);
  expect(res.ms, where).toBeLessThan(LIMIT_MS);
  for (const pattern of STACK) expect(res.body, where).not.toMatch(pattern);
  if (res.status >= 400 && res.json) {
    expect(allowed, where).toContain(res.json.error);
    expect(typeof res.json.error_description === 'string' || res.json.error_description === undefined, where).toBe(
      true,
    );
  }
}

// --- value arbitraries ---

const LONE_SURROGATES = ['\ud800', '\udbff', '\udc00', '\udfff', 'a\ud800b', '\udc00\ud800'];
/** Hand-picked values that have broken parsers before. */
const NASTY = [
  '',
  ' ',
  '  ',
  '\t',
  '\r\n',
  '+',
  '&',
  '=',
  '&=&',
  '%',
  '%%',
  '%ZZ',
  '%0',
  '%C0%AF',
  '%E2%80%AE',
  '%FF%FE',
  '\u202e',
  '\u200f',
  '\u2066',
  '\ufeff',
  '\u00a0',
  '\u2028',
  '\ufffd',
  'e\u0301',
  '\u{1f600}',
  'ｃｏｄｅ',
  'İ',
  'ß',
  'null',
  'undefined',
  'true',
  'false',
  '0',
  '-1',
  '1e309',
  'NaN',
  'Infinity',
  '9007199254740993',
  '0x10',
  '[]',
  '{}',
  '[object Object]',
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  'toString',
  '"',
  "'",
  '\\',
  '`',
  '<',
  '>',
  '<script>alert(1)</script>',
  '${7*7}',
  '{{7*7}}',
  "' OR '1'='1",
  '; DROP TABLE x;--',
  '../../../etc/passwd',
  '..%2f..%2f',
  '/',
  '//',
  '.',
  '..',
  '*',
  '?',
  '#',
  '#frag',
  'http://evil.example/',
  'https://evil.example/cb',
  'javascript:alert(1)',
  'data:text/html,x',
  'file:///etc/passwd',
  'http://127.0.0.1/callback#x',
  'http://127.0.0.1/callback?x=1',
  'http://127.0.0.1:0/callback',
  'HTTP://127.0.0.1/callback',
  'Basic',
  'Bearer',
  'eyJ',
  'a.b.c',
  'eyJhbGciOiJub25lIn0.e30.',
  '...',
  'a'.repeat(43),
  '-_'.repeat(30),
  ...LONE_SURROGATES,
];
/** U+0000 as such and percent-encoded (a raw pair sends `%00` as typed). */
const NUL_VALUES = ['\u0000', 'a\u0000', '\u0000\u0000', 'svc\u0000', '\u0000x', '%00', 'a%00b'];

/** Any string: hand-picked, random printable, random full unicode (incl. lone surrogates), very long. */
export function stringArb(opts: { nul: boolean }): fc.Arbitrary<string> {
  const clean = (s: string) => (opts.nul ? s : s.replace(/\u0000/g, ''));
  return fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...NASTY, ...(opts.nul ? NUL_VALUES : [])) },
    { weight: 6, arbitrary: fc.string({ maxLength: 40 }) },
    { weight: 6, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map(clean) },
    {
      weight: 2,
      arbitrary: fc.array(fc.constantFrom(...LONE_SURROGATES, 'x', '\u202e'), { maxLength: 8 }).map((a) => a.join('')),
    },
    // Long values; the longest passes the 64 KiB body limit (413).
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(300, 300, 5_000, 5_000, 70_000), fc.constantFrom('x', '%', 'é', '\u{1f600}'))
        .map(([n, c]) => c.repeat(n)),
    },
  );
}

/** How a real value is bent before sending. */
export type Mutation = 'as-is' | 'suffix' | 'prefix' | 'truncate' | 'upper' | 'space' | 'nul' | 'double';
export function mutationArb(opts: { nul: boolean }): fc.Arbitrary<Mutation> {
  const all: Mutation[] = ['as-is', 'suffix', 'prefix', 'truncate', 'upper', 'space', 'double'];
  return fc.constantFrom(...all, ...(opts.nul ? (['nul'] as Mutation[]) : []));
}
export function mutate(value: string, m: Mutation): string {
  switch (m) {
    case 'as-is':
      return value;
    case 'suffix':
      return value + 'x';
    case 'prefix':
      return 'x' + value;
    case 'truncate':
      return value.slice(0, Math.max(0, value.length - 1));
    case 'upper':
      return value.toUpperCase();
    case 'space':
      return ` ${value} `;
    case 'nul':
      return value + '\u0000';
    case 'double':
      return value + value;
  }
}

/** A value that is either literal or a reference to a real value (client id, token...) resolved when the case runs. */
export type Val = string | { ref: string; m: Mutation };
export type Resolver = (ref: string) => string;
export const resolve = (v: Val, r: Resolver): string => (typeof v === 'string' ? v : mutate(r(v.ref), v.m));

/** A reference to a real value (mostly unmutated, so the code paths behind the lookup run too). */
export function refArb(refs: readonly string[], opts: { nul: boolean }): fc.Arbitrary<Val> {
  return fc.record({
    ref: fc.constantFrom(...refs),
    m: fc.oneof({ weight: 4, arbitrary: fc.constant<Mutation>('as-is') }, { weight: 1, arbitrary: mutationArb(opts) }),
  });
}

/** Values of one parameter: absent, once (mostly), or repeated. */
export function occurrencesArb(value: fc.Arbitrary<Val>, absentWeight = 3): fc.Arbitrary<Val[]> {
  return fc.oneof(
    { weight: absentWeight, arbitrary: fc.constant<Val[]>([]) },
    { weight: 20, arbitrary: value.map((v) => [v]) },
    { weight: 1, arbitrary: fc.array(value, { minLength: 2, maxLength: 3 }) },
  );
}

export type Pair = { name: string; value: Val; raw: boolean };

/**
 * Form parameters: for each real name an occurrence list from `valueFor(name)`, then random extra parameters; each
 * pair percent-encoded, or sent raw (percent-encoding garbage goes through as typed).
 */
export function formArb(
  names: readonly string[],
  valueFor: (name: string) => fc.Arbitrary<Val>,
  opts: { nul: boolean },
  /** Weight of "absent" against 20 for "once" (optional parameters are left out more often). */
  absentWeight: (name: string) => number = () => 3,
): fc.Arbitrary<Pair[]> {
  const str = stringArb(opts);
  // Mostly percent-encoded; sometimes as typed, so percent-encoding garbage reaches the parser.
  const raw = fc.oneof({ weight: 5, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
  const known = fc
    .tuple(
      ...names.map((name) =>
        occurrencesArb(valueFor(name), absentWeight(name)).chain((vs) =>
          fc.tuple(...vs.map((value) => raw.map((r) => ({ name, value, raw: r })))),
        ),
      ),
    )
    .map((l) => l.flat());
  const extra = fc.array(
    fc.record({
      name: fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...names) }, { weight: 4, arbitrary: str }),
      value: str,
      raw,
    }),
    { maxLength: 3 },
  );
  return fc.tuple(known, extra).chain(([k, e]) => {
    const all = [...k, ...e];
    return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length });
  });
}

/**
 * A valid request (`templates`, with references to real values) bent by up to three edits: a parameter dropped,
 * its value replaced (garbage or another real value), repeated, or a parameter added. These get past the first checks
 * into the code that runs on well-formed requests.
 */
export function bentArb(
  templates: fc.Arbitrary<Pair[]>,
  names: readonly string[],
  value: fc.Arbitrary<Val>,
  opts: { nul: boolean },
): fc.Arbitrary<Pair[]> {
  const edit = fc.record({
    op: fc.constantFrom('drop', 'replace', 'replace', 'repeat', 'add'),
    at: fc.nat(),
    name: fc.oneof(fc.constantFrom(...names), stringArb(opts)),
    value,
  });
  return fc.tuple(templates, fc.array(edit, { maxLength: 3 })).map(([template, edits]) => {
    const pairs = [...template];
    for (const e of edits) {
      const i = pairs.length ? e.at % pairs.length : 0;
      if (e.op === 'drop' && pairs.length) pairs.splice(i, 1);
      else if (e.op === 'replace' && pairs.length) pairs[i] = { ...pairs[i]!, value: e.value };
      else if (e.op === 'repeat' && pairs.length) pairs.push({ ...pairs[i]!, value: e.value });
      else pairs.push({ name: e.name, value: e.value, raw: false });
    }
    return pairs;
  });
}

/** Shorthand for a template: name -> value or reference ('=name' is a reference to the real value `name`). */
export function template(fields: Record<string, string>): Pair[] {
  return Object.entries(fields).map(([name, v]) => ({
    name,
    value: v.startsWith('=') ? { ref: v.slice(1), m: 'as-is' as const } : v,
    raw: false,
  }));
}

/** Serializes pairs as application/x-www-form-urlencoded. Lone surrogates become U+FFFD (as in any browser). */
export function encodeForm(pairs: Pair[], r: Resolver): string {
  return pairs
    .map(({ name, value, raw }) => {
      const v = resolve(value, r);
      if (raw) return `${name}=${v}`;
      return new URLSearchParams([[name, v]]).toString();
    })
    .join('&');
}

/** Headers: content type (right, wrong, garbage), Authorization (Basic/Bearer good and bad), a cookie. */
export type HeaderSpec = {
  contentType?: string;
  authorization?: Val | { basic: [Val, Val] };
  cookie?: string;
  extra?: [string, string];
};

const headerText = fc.string({ maxLength: 60 }).map((s) => s.replace(/[^\x20-\x7e]/g, ''));
const headerName = fc
  .stringMatching(/^[a-z][a-z0-9-]{0,15}$/)
  .filter(
    (n) =>
      ![
        'host',
        'content-length',
        'transfer-encoding',
        'content-type',
        'authorization',
        'cookie',
        'connection',
        'expect',
      ].includes(n),
  );

export function contentTypeArb(usual: string): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { weight: 20, arbitrary: fc.constant(usual) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        undefined,
        'application/x-www-form-urlencoded',
        'application/x-www-form-urlencoded; charset=utf-8',
        'application/x-www-form-urlencoded; charset=latin1',
        'APPLICATION/X-WWW-FORM-URLENCODED',
        'application/json',
        'application/json; charset=utf-8',
        'application/jsonx',
        'text/plain',
        'text/html',
        'multipart/form-data; boundary=x',
        'application/octet-stream',
        'application/xml',
        '*/*',
        '',
        ';',
        'application/',
      ),
    },
    { weight: 1, arbitrary: headerText },
  );
}

/** Authorization header: Basic with real (as [id, secret] reference pairs) or garbage credentials, Bearer garbage, any text. */
export function authorizationArb(
  basicPairs: readonly (readonly [string, string])[],
  opts: { nul: boolean },
): fc.Arbitrary<HeaderSpec['authorization']> {
  const str = stringArb(opts);
  const refs = basicPairs.flat();
  const part: fc.Arbitrary<Val> = refs.length ? fc.oneof(refArb(refs, opts), str) : str;
  const pair = basicPairs.length
    ? fc
        .tuple(fc.constantFrom(...basicPairs), mutationArb(opts), fc.boolean())
        .map(([[id, secret], m, bendSecret]): [Val, Val] => [
          { ref: id, m: bendSecret ? 'as-is' : m },
          { ref: secret, m: bendSecret ? m : 'as-is' },
        ])
    : fc.tuple(part, part);
  return fc.oneof(
    { weight: 6, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: pair.map((basic) => ({ basic })) },
    { weight: 1, arbitrary: fc.tuple(part, part).map((basic) => ({ basic })) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        headerText.map((s) => `Basic ${s}`),
        headerText.map((s) => `Bearer ${s}`),
        fc.constantFrom(
          'Basic',
          'Basic ',
          'Basic !!!',
          'Basic Og==',
          'Basic OjpfOg==',
          'Bearer',
          'Bearer ',
          'Bearer a b',
          'bearer x',
          'Digest x',
          'Basic%20eA==',
          'Basic eA',
          'Basic ' + 'A'.repeat(5000),
        ),
        headerText,
        ...(opts.nul ? [fc.constant('Basic ' + Buffer.from('\u0000:\u0000').toString('base64'))] : []),
      ),
    },
  );
}

export function headersArb(
  usualContentType: string,
  basicPairs: readonly (readonly [string, string])[],
  opts: { nul: boolean },
): fc.Arbitrary<HeaderSpec> {
  return fc.record(
    {
      contentType: contentTypeArb(usualContentType),
      authorization: authorizationArb(basicPairs, opts),
      cookie: fc.oneof(
        headerText,
        fc.constantFrom('gatehouse_csrf=x.y', 'gatehouse_session=a.b; gatehouse_session=c', '=;;=', 'gatehouse_csrf='),
      ),
      extra: fc.tuple(headerName, headerText),
    },
    { requiredKeys: ['contentType'] },
  );
}

/** Basic credentials are form-encoded then base64'd (RFC 6749 §2.3.1). Header values are latin1 on the wire. */
export function buildHeaders(
  spec: HeaderSpec,
  r: Resolver,
  opts: { nul: boolean } = { nul: true },
): Record<string, string> {
  const h: Record<string, string> = {};
  if (spec.contentType !== undefined) h['content-type'] = spec.contentType;
  if (spec.authorization !== undefined) {
    if (typeof spec.authorization === 'object' && 'basic' in spec.authorization) {
      const [id, secret] = spec.authorization.basic.map((v) => resolve(v, r));
      const enc = (s: string) => new URLSearchParams([['', s]]).toString().slice(1);
      h.authorization = `Basic ${Buffer.from(`${enc(id!)}:${enc(secret!)}`).toString('base64')}`;
    } else {
      h.authorization = resolve(spec.authorization, r).replace(/[^\x20-\x7e]/g, '');
    }
  }
  if (spec.cookie !== undefined) h.cookie = spec.cookie;
  if (spec.extra) h[spec.extra[0]] = spec.extra[1];
  // Random Basic garbage can decode to U+0000 (see FuzzStore.nul).
  if (
    !opts.nul &&
    h.authorization &&
    /^basic /i.test(h.authorization) &&
    Buffer.from(h.authorization.slice(6), 'base64').includes(0)
  )
    delete h.authorization;
  return h;
}

/** `arb` in one case of `n`, else null. */
export const rarely = <T>(arb: fc.Arbitrary<T>, n: number): fc.Arbitrary<T | null> =>
  fc.oneof({ weight: n - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });

/** A raw body: random bytes, random text, or random JSON. */
export function rawBodyArb(opts: { nul: boolean }): fc.Arbitrary<string | Buffer> {
  return fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(opts.nul ? a : a.filter((b) => b !== 0))),
    stringArb(opts),
    fc.json().map((s) => (opts.nul ? s : s.replace(/\\u0000/g, ''))),
  );
}

/** A path segment: random text percent-encoded, or percent-encoding garbage as typed. */
export function segmentArb(opts: { nul: boolean }): fc.Arbitrary<string> {
  return fc.oneof(
    stringArb(opts).map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '\ufffd'))),
    fc
      .constantFrom(
        '%',
        '%ZZ',
        '%00',
        '%C0%AF',
        '%FF',
        '..',
        '.',
        '%2e%2e',
        '%2F',
        'a%2Fb',
        '~',
        '!',
        "'",
        '(',
        ')',
        '*',
        ';',
        ':',
        '@',
        '$',
        ',',
        '%20',
        '+',
      )
      .filter((s) => opts.nul || s !== '%00'),
  );
}

// --- real state: codes minted straight into the store, tokens from /token ---

export interface MintedCode {
  code: string;
  verifier: string;
}

/** Saves a fresh authorization code for `clientId` (as /authorize + consent would). */
export async function mintCode(
  fz: FuzzServer,
  clientId: string,
  scope = ['openid', 'offline_access', 'mcp:read'],
): Promise<MintedCode> {
  const { storage, clock, config } = fz.gatehouse.deps;
  const alice = await storage.getUserByUsername(ALICE.username);
  const code = randomToken();
  const verifier = randomToken();
  const now = clock.now();
  await storage.saveAuthorizationCode({
    codeHash: hashToken(code),
    grantId: randomId(),
    clientId,
    userId: alice!.id,
    redirectUri: REDIRECT,
    redirectUriSent: true,
    scope,
    resource: [],
    codeChallenge: createHash('sha256').update(verifier).digest('base64url'),
    authTime: now,
    createdAt: now,
    expiresAt: now + config.tokens.authorizationCodeTtl * 1000,
  });
  return { code, verifier };
}

/** Client credentials as a form (client_secret_post) or a Basic header. */
export function clientAuth(
  client: { id: string; secret?: string },
  method: 'basic' | 'post' | 'none',
): { headers: Record<string, string>; form: Record<string, string> } {
  if (method === 'basic')
    return {
      headers: { authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}` },
      form: {},
    };
  if (method === 'post') return { headers: {}, form: { client_id: client.id, client_secret: client.secret! } };
  return { headers: {}, form: { client_id: client.id } };
}

/** Redeems a code at /token; returns the JSON (asserting 200). */
export async function redeemCode(
  fz: FuzzServer,
  client: { id: string; secret?: string },
  method: 'basic' | 'post' | 'none',
  minted: MintedCode,
) {
  const auth = clientAuth(client, method);
  const res = await fz.inject({
    method: 'POST',
    url: '/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...auth.headers },
    payload: new URLSearchParams({
      grant_type: 'authorization_code',
      code: minted.code,
      code_verifier: minted.verifier,
      redirect_uri: REDIRECT,
      ...auth.form,
    }).toString(),
  });
  expect(res.status, res.body).toBe(200);
  return res.json as { access_token: string; refresh_token: string; id_token?: string };
}

export const jtiOf = (jwt: string): string => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()).jti;

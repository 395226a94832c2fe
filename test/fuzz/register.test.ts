/**
 * Fuzz of dynamic client registration (RFC 7591) and its management protocol (RFC 7592): metadata objects built from
 * the real field names with valid, wrong-typed and hostile values, random JSON and raw bodies, random content types
 * and Authorization headers, random paths under /register/. No 5xx, no stack trace, answers within 2 s, RFC 7591
 * §3.2.2 / RFC 6750 error codes, and a refused request changes nothing: no client is added (counted with
 * listClients), the managed client is neither changed nor deleted.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildHeaders,
  expectSafe,
  FUZZ_STORES,
  headersArb,
  printStats,
  rawBodyArb,
  REDIRECT,
  runsFor,
  segmentArb,
  startFuzzServer,
  stringArb,
  timeoutFor,
  type FuzzServer,
  type HeaderSpec,
} from './harness.js';

const REGISTER_ERRORS = [
  'invalid_redirect_uri',
  'invalid_client_metadata',
  'invalid_software_statement',
  'unapproved_software_statement',
  'invalid_request',
  'invalid_token',
];
/** The configuration endpoint also answers 404 for paths that name no endpoint. */
const MANAGE_ERRORS = [...REGISTER_ERRORS, 'not_found'];

/** Drops U+0000 from every string of a JSON value (PostgreSQL run, see FuzzStore.nul). */
const withoutNul = <T>(v: T): T => JSON.parse(JSON.stringify(v).replace(/\\u0000/g, '')) as T;

for (const store of FUZZ_STORES) {
  describe(`fuzz /register and RFC 7592 (${store.kind})`, () => {
    const opts = { nul: store.nul };
    const str = stringArb(opts);
    const clean = <T>(a: fc.Arbitrary<T>) => (store.nul ? a : a.map(withoutNul));
    const wrongType = clean(
      fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(null, 0, -1, 1e308, true, [], {}, [null], [[]], '')),
    );
    /** A field: mostly a plausible value, sometimes any JSON value of the wrong type. */
    const field = <T>(valid: fc.Arbitrary<T>) =>
      fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: wrongType });
    const uri = fc.oneof(
      fc.constantFrom(
        REDIRECT,
        'http://localhost:3000/cb',
        'http://[::1]/cb',
        'https://app.example/cb',
        'com.example.app:/cb',
        'http://127.0.0.1:0/x',
        'javascript:alert(1)',
        'https://app.example/cb#f',
        'https://*.example/cb',
        'http://evil.example/cb',
        'https://user:pw@app.example/',
        'urn:ietf:wg:oauth:2.0:oob',
        'file:///x',
        '',
      ),
      fc.webUrl({ withQueryParameters: true, withFragments: true }),
      str,
    );
    const list = <T>(a: fc.Arbitrary<T>, maxLength = 3) => fc.array(a, { maxLength });
    const fields: Record<string, fc.Arbitrary<unknown>> = {
      redirect_uris: field(list(uri)),
      token_endpoint_auth_method: field(
        fc.oneof(
          fc.constantFrom(
            'none',
            'client_secret_basic',
            'client_secret_post',
            'private_key_jwt',
            'tls_client_auth',
            'NONE',
          ),
          str,
        ),
      ),
      grant_types: field(
        list(
          fc.oneof(
            fc.constantFrom('authorization_code', 'refresh_token', 'client_credentials', 'implicit', 'password'),
            str,
          ),
        ),
      ),
      response_types: field(list(fc.oneof(fc.constantFrom('code', 'token', 'id_token', 'code id_token'), str))),
      client_name: field(str),
      scope: field(
        fc.oneof(fc.constantFrom('mcp:read', 'openid mcp:read', 'admin', 'mcp:read  mcp:write', 'offline_access'), str),
      ),
      contacts: field(list(fc.oneof(fc.emailAddress(), str))),
      client_uri: field(uri),
      logo_uri: field(uri),
      tos_uri: field(uri),
      policy_uri: field(uri),
      software_id: field(str),
      software_version: field(str),
      application_type: field(fc.oneof(fc.constantFrom('web', 'native'), str)),
      jwks_uri: field(uri),
      jwks: wrongType,
      software_statement: field(fc.oneof(fc.constantFrom('eyJhbGciOiJub25lIn0.e30.'), str)),
      client_id: field(str),
      client_secret: field(str),
    };
    const pick = (keys: string[]) => Object.fromEntries(keys.map((k) => [k, fields[k]!]));
    /** Valid registrations, for the bent cases. */
    const bases: Record<string, unknown>[] = [
      {
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
      },
      {
        redirect_uris: ['http://localhost:3000/cb', 'https://app.example/cb'],
        client_name: 'App',
        scope: 'mcp:read',
        client_uri: 'https://app.example/',
      },
      { grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' },
      { redirect_uris: ['com.example.app:/cb'], application_type: 'native', token_endpoint_auth_method: 'none' },
    ];
    const extraKeys = fc.dictionary(
      fc.oneof(
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            '__proto__',
            'constructor',
            'prototype',
            'toString',
            'client_secret_expires_at',
            'registration_access_token',
          ),
        },
        { weight: 4, arbitrary: str },
      ),
      wrongType,
      { maxKeys: 2 },
    );
    const metadata = fc.oneof(
      // Any subset of the fields with any values, plus unknown keys.
      fc.tuple(fc.record(fields, { requiredKeys: [] }), extraKeys).map(([known, extra]) => ({ ...extra, ...known })),
      // A valid registration with one or two fields bent, sometimes an unknown key.
      fc
        .tuple(
          fc.constantFrom(...bases),
          fc.subarray(Object.keys(fields), { maxLength: 2 }).chain((keys) => fc.record(pick(keys))),
          fc.option(extraKeys),
        )
        .map(([base, bent, extra]) => ({ ...(extra ?? {}), ...base, ...bent })),
    );
    /** A JSON body: a metadata object (sometimes with a raw `"__proto__"` key), random JSON, or raw bytes. */
    const body = fc.oneof(
      { weight: 6, arbitrary: metadata.map((m) => JSON.stringify(m)) },
      { weight: 1, arbitrary: metadata.map((m) => JSON.stringify(m).replace(/^\{/, '{"__proto__":{"x":1},')) },
      { weight: 1, arbitrary: clean(fc.json({ maxDepth: 3 })) },
      { weight: 1, arbitrary: rawBodyArb(opts) },
    );
    const headers = headersArb('application/json', [], opts);
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` }) as HeaderSpec;

    let fz: FuzzServer | undefined;
    /** The client the RFC 7592 cases manage: its id and registration access token. */
    let managed: { id: string; token: string };
    const register = async () => {
      const res = await fz!.inject({
        method: 'POST',
        url: '/register',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({
          redirect_uris: [REDIRECT],
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code'],
          client_name: 'managed',
        }),
      });
      expect(res.status, res.body).toBe(201);
      managed = { id: res.json!.client_id as string, token: res.json!.registration_access_token as string };
    };
    const snapshot = async () => JSON.stringify(await fz!.gatehouse.deps.storage.getClient(managed.id)) ?? 'absent';
    const clientCount = async () => (await fz!.gatehouse.deps.storage.listClients()).length;

    beforeAll(async () => {
      fz = await startFuzzServer(store);
      if (fz) await register();
    }, 60_000);
    afterAll(async () => {
      printStats(`/register (${store.kind})`);
      await fz?.close();
    });

    const runs = runsFor(store);
    it(
      `POST /register: safe answers, and a refused registration adds no client (${runs} cases)`,
      async () => {
        if (!fz) return;
        const server = fz;
        await fc.assert(
          fc.asyncProperty(body, headers, async (payload, h) => {
            const before = await clientCount();
            const res = await server.inject({
              method: 'POST',
              url: '/register',
              headers: buildHeaders(h, () => '', opts),
              payload,
            });
            expectSafe(res, REGISTER_ERRORS);
            const after = await clientCount();
            if (res.status === 201) {
              expect(after, res.request).toBe(before + 1);
              expect(typeof res.json?.client_id).toBe('string');
              expect(await server.gatehouse.deps.storage.getClient(res.json!.client_id as string)).toBeDefined();
            } else {
              expect(res.status, res.request).toBeGreaterThanOrEqual(400);
              expect(after, `a refused registration added a client: ${res.request}`).toBe(before);
            }
          }),
          { numRuns: runs },
        );
      },
      timeoutFor(runs),
    );

    const manageCase = fc.record({
      method: fc.constantFrom('GET', 'PUT', 'PUT', 'DELETE', 'POST', 'PATCH'),
      /** 'managed' is the real client id; else a random segment, or a deeper random path. */
      path: fc.oneof(
        { weight: 6, arbitrary: fc.constant<string[]>(['managed']) },
        { weight: 2, arbitrary: segmentArb(opts).map((s) => [s]) },
        {
          weight: 1,
          arbitrary: fc.array(segmentArb(opts), { minLength: 0, maxLength: 3 }).map((a) => ['managed', ...a]),
        },
      ),
      auth: fc.oneof(
        { weight: 6, arbitrary: fc.constant('token' as const) },
        { weight: 3, arbitrary: headers.map((h) => h.authorization) },
      ),
      contentType: fc.oneof(
        { weight: 6, arbitrary: fc.constant('application/json') },
        { weight: 1, arbitrary: headers.map((h) => h.contentType) },
      ),
      /** PUT bodies carry the right client_id most of the time, so the update's validation runs. */
      body: fc.oneof(
        { weight: 5, arbitrary: fc.tuple(metadata, fc.boolean()).map(([m, keepId]) => ({ m, keepId })) },
        { weight: 1, arbitrary: body.map((raw) => ({ raw })) },
      ),
    });

    const manageRuns = runsFor(store);
    it(
      `RFC 7592 read/update/delete: safe answers, and a refused request changes no client (${manageRuns} cases)`,
      async () => {
        if (!fz) return;
        const server = fz;
        await fc.assert(
          fc.asyncProperty(manageCase, async (c) => {
            const before = await snapshot();
            const count = await clientCount();
            const url =
              '/register/' + c.path.map((s) => (s === 'managed' ? encodeURIComponent(managed.id) : s)).join('/');
            const h = buildHeaders(
              {
                contentType: c.contentType,
                authorization: c.auth === 'token' ? bearer(managed.token).authorization : c.auth,
              },
              () => '',
            );
            let payload: string | Buffer | undefined;
            if (c.method === 'PUT' || c.method === 'POST' || c.method === 'PATCH') {
              payload =
                'raw' in c.body
                  ? c.body.raw
                  : JSON.stringify(c.body.keepId ? { ...c.body.m, client_id: managed.id } : c.body.m);
            }
            const res = await server.inject({ method: c.method, url, headers: h, payload });
            expectSafe(res, MANAGE_ERRORS);
            const after = await snapshot();
            expect(await clientCount(), `client count changed: ${res.request}`).toBeLessThanOrEqual(count);
            if (res.status === 204) {
              expect(after, res.request).toBe('absent');
              await register();
            } else if (res.status >= 400) {
              expect(after, `a refused request changed the client: ${res.request} -> ${res.status} ${res.body}`).toBe(
                before,
              );
              expect(await clientCount()).toBe(count);
            } else {
              expect(res.status, res.request).toBe(200);
              if (c.method === 'GET') expect(after).toBe(before);
            }
          }),
          { numRuns: manageRuns },
        );
      },
      timeoutFor(manageRuns),
    );
  });
}

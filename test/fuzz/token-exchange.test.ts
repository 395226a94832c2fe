/**
 * Fuzz of the token exchange grant (RFC 8693) at POST /token: every field of the request drawn from values the grant
 * accepts or values that break one rule (client, subject token, its type, the requested type, the target, the scope,
 * an actor token). No 5xx, RFC error codes, and the answer is 200 exactly when no rule was broken.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectSafe,
  FUZZ_STORES,
  printStats,
  runsFor,
  startFuzzServer,
  timeoutFor,
  type FuzzServer,
} from './harness.js';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const MCP = 'https://mcp.example.com/mcp';
const API = 'https://api.example.com/';
const RS = { id: 'rs', secret: 'an-rs-secret-of-at-least-32-characters' };
const UNLISTED = { id: 'unlisted', secret: 'an-unlisted-secret-of-32-characters!!' };
const MACHINE = { id: 'machine', secret: 'a-machine-secret-of-at-least-32-chars' };
const ERRORS = [
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_target',
];

type Drawn<T> = { v: T; ok: boolean };
/** Mostly a value the grant accepts, sometimes one that breaks its rule. */
const pick = <T>(goods: readonly T[], bads: readonly T[]): fc.Arbitrary<Drawn<T>> =>
  fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...goods).map((v) => ({ v, ok: true })) },
    { weight: 1, arbitrary: fc.constantFrom(...bads).map((v) => ({ v, ok: false })) },
  );

const exchangeCase = fc.record({
  auth: pick(['rs'], ['unlisted', 'wrong-secret', 'none']),
  subject: pick(['live'], ['revoked', 'other-audience', 'garbage', 'absent']),
  subjectType: pick([ACCESS_TOKEN], ['urn:ietf:params:oauth:token-type:id_token', undefined]),
  requestedType: pick([undefined, ACCESS_TOKEN], ['urn:ietf:params:oauth:token-type:refresh_token']),
  target: pick<{ resource?: string; audience?: string }>(
    [{ resource: API }, { audience: API }],
    [
      { resource: MCP },
      { resource: 'urn:gatehouse:upstream:x' },
      {},
      { resource: API, audience: API },
      { resource: 'api' },
    ],
  ),
  scope: pick([undefined, 'mcp:read'], ['mcp:write', 'mcp:read\\x']),
  actor: pick([false], [true]),
});

for (const store of FUZZ_STORES) {
  describe(`fuzz POST /token, token exchange (${store.kind})`, () => {
    let fz: FuzzServer | undefined;
    const subjects: Record<string, string> = {};
    const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
    beforeAll(async () => {
      fz = await startFuzzServer(store, {
        resources: [MCP, API],
        clients: [
          {
            client_id: MACHINE.id,
            client_secret: MACHINE.secret,
            grant_types: ['client_credentials'],
            scope: 'mcp:read',
          },
          { client_id: RS.id, client_secret: RS.secret, grant_types: [EXCHANGE] },
          { client_id: UNLISTED.id, client_secret: UNLISTED.secret, grant_types: [EXCHANGE] },
        ],
        tokenExchange: { resourceServers: [{ clientId: RS.id, audiences: [MCP], audiencesOut: [API] }] },
      });
      if (!fz) return;
      const machineToken = async (resource: string) => {
        const res = await fz!.inject({
          method: 'POST',
          url: '/token',
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            authorization: basic(MACHINE.id, MACHINE.secret),
          },
          payload: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'mcp:read' }).toString(),
        });
        expect(res.status, res.body).toBe(200);
        return res.json!.access_token as string;
      };
      subjects.live = await machineToken(MCP);
      subjects['other-audience'] = await machineToken(API);
      subjects.revoked = await machineToken(MCP);
      const revoked = await fz.inject({
        method: 'POST',
        url: '/revoke',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: basic(MACHINE.id, MACHINE.secret),
        },
        payload: new URLSearchParams({ token: subjects.revoked }).toString(),
      });
      expect(revoked.status).toBe(200);
      subjects.garbage = 'eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.';
    }, 60_000);
    afterAll(async () => {
      printStats(`/token token exchange (${store.kind})`);
      await fz?.close();
    });

    const runs = runsFor(store);
    it(
      `no 5xx, RFC error codes, 200 exactly when no rule is broken (${runs} cases)`,
      async () => {
        if (!fz) return;
        const server = fz;
        let accepted = 0;
        await fc.assert(
          fc.asyncProperty(exchangeCase, async (c) => {
            const form: Record<string, string> = { grant_type: EXCHANGE };
            if (c.subject.v !== 'absent') form.subject_token = subjects[c.subject.v]!;
            if (c.subjectType.v !== undefined) form.subject_token_type = c.subjectType.v;
            if (c.requestedType.v !== undefined) form.requested_token_type = c.requestedType.v;
            const target = c.target.v;
            if (target.resource !== undefined) form.resource = target.resource;
            if (target.audience !== undefined) form.audience = target.audience;
            if (c.scope.v !== undefined) form.scope = c.scope.v;
            if (c.actor.v) {
              form.actor_token = subjects.live!;
              form.actor_token_type = ACCESS_TOKEN;
            }
            const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
            if (c.auth.v === 'rs') headers.authorization = basic(RS.id, RS.secret);
            if (c.auth.v === 'unlisted') headers.authorization = basic(UNLISTED.id, UNLISTED.secret);
            if (c.auth.v === 'wrong-secret') headers.authorization = basic(RS.id, 'x'.repeat(40));
            const res = await server.inject({
              method: 'POST',
              url: '/token',
              headers,
              payload: new URLSearchParams(form).toString(),
            });
            expectSafe(res, ERRORS);
            const broken = Object.entries(c)
              .filter(([, d]) => !d.ok)
              .map(([name]) => name);
            expect(
              res.status === 200,
              `broken: ${broken.join(', ') || 'nothing'}: ${JSON.stringify(c)} -> ${res.body}`,
            ).toBe(broken.length === 0);
            if (res.status === 200) {
              accepted += 1;
              expect(res.json).toMatchObject({ issued_token_type: ACCESS_TOKEN, token_type: 'Bearer' });
            }
          }),
          { numRuns: runs },
        );
        expect(accepted).toBeGreaterThan(0);
      },
      timeoutFor(runs),
    );
  });
}

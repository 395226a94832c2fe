/**
 * Enterprise-Managed Authorization per tenant, on every store: a tenant trusts its own enterprise IdP (config
 * `tenants[].enterpriseIdps`), an ID-JAG must name that tenant's issuer as `aud`, and neither the deployment nor
 * another tenant accepts it. The jti is single use within the tenant that redeemed it.
 */
import { randomBytes } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startJwtIssuer, type TestIssuer } from '../helpers/jwt-issuer.js';
import { basic, postForm } from '../helpers/oauth.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ID_JAG_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag';
const MCP = 'https://mcp.acme.example/mcp';
const AGENT = { id: 'agent', secret: `agent-secret-${'x'.repeat(32)}` };
const agentClient = {
  client_id: AGENT.id,
  client_secret: AGENT.secret,
  grant_types: [JWT_BEARER],
  scope: 'mcp:read',
};
/** The same client where no IdP is trusted: the grant is not offered there, so it cannot be registered for it. */
const machineClient = { ...agentClient, grant_types: ['client_credentials'] };

let idp: TestIssuer;
beforeAll(async () => {
  idp = await startJwtIssuer('acme-idp');
});
afterAll(() => idp?.close());

for (const store of E2E_STORES) {
  describe(`ID-JAG per tenant (${store.kind})`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_jagt_${randomBytes(4).toString('hex')}`;
    let server: TestServer;
    const issuerOf = (tenant?: string) => (tenant ? `${server.issuer}/${tenant}` : server.issuer);

    beforeAll(async () => {
      if (!(await available)) return;
      const tenant = (id: string, trusts: boolean) => ({
        id,
        scopes: ['mcp:read'],
        resources: [MCP],
        clients: [trusts ? agentClient : machineClient],
        ...(trusts && {
          enterpriseIdps: [
            {
              issuer: idp.issuer,
              jwksUri: idp.jwksUri,
              allowPrivateAddresses: true,
              trustedCaFile: idp.caFile,
              allowedClients: [AGENT.id],
              subjectPrefix: 'acme|',
            },
          ],
        }),
      });
      // The deployment has the same client and resource but trusts no IdP; tenant beta neither.
      server = await startServer({
        ...store.config(isolation),
        scopes: ['mcp:read'],
        resources: [MCP],
        clients: [machineClient],
        tenants: [tenant('acme', true), tenant('beta', false)],
      });
    });
    afterAll(async () => {
      if (!(await available)) return;
      await server?.close();
      await store.cleanup?.(isolation);
    });

    const jag = (aud: string, claims: JWTPayload = {}) =>
      idp.sign(
        { sub: 'alice@acme.example', aud, client_id: AGENT.id, resource: MCP, scope: 'mcp:read', ...claims },
        { typ: 'oauth-id-jag+jwt' },
      );
    const redeem = (tenant: string | undefined, assertion: string) =>
      postForm(
        `${issuerOf(tenant)}/token`,
        { grant_type: JWT_BEARER, assertion },
        { authorization: basic(AGENT.id, AGENT.secret) },
      );
    const metadata = async (tenant?: string) =>
      (await (
        await fetch(`${server.origin}/.well-known/oauth-authorization-server${tenant ? `/${tenant}` : ''}`)
      ).json()) as Record<string, unknown>;

    it('only the tenant that trusts the IdP advertises the ID-JAG profile', async (t) => {
      if (!(await available)) return t.skip();
      expect((await metadata('acme')).authorization_grant_profiles_supported).toEqual([ID_JAG_PROFILE]);
      expect((await metadata('beta')).authorization_grant_profiles_supported).toBeUndefined();
      expect((await metadata()).authorization_grant_profiles_supported).toBeUndefined();
    });

    it("the tenant's ID-JAG buys a token of that tenant, once", async (t) => {
      if (!(await available)) return t.skip();
      const assertion = await jag(issuerOf('acme'));
      const res = await redeem('acme', assertion);
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      expect(res.json.refresh_token).toBeUndefined();
      const jwks = createRemoteJWKSet(new URL(`${issuerOf('acme')}/jwks.json`));
      const { payload } = await jwtVerify(res.json.access_token as string, jwks, {
        issuer: issuerOf('acme'),
        audience: MCP,
      });
      expect(payload).toMatchObject({ sub: 'acme|alice@acme.example', client_id: AGENT.id, scope: 'mcp:read' });
      const again = await redeem('acme', assertion);
      expect([again.status, again.json.error]).toEqual([400, 'invalid_grant']);
    });

    it('an ID-JAG for another issuer is refused; no other issuer trusts the IdP', async (t) => {
      if (!(await available)) return t.skip();
      // Addressed to the deployment (or another tenant), presented at acme: the audience is wrong.
      for (const aud of [issuerOf(), issuerOf('beta')]) {
        const res = await redeem('acme', await jag(aud));
        expect([res.status, res.json.error], aud).toEqual([400, 'invalid_grant']);
      }
      // Addressed to acme's neighbours and presented there: they trust no IdP, so they do not offer the grant.
      for (const tenant of [undefined, 'beta']) {
        const res = await redeem(tenant, await jag(issuerOf(tenant)));
        expect([res.status, res.json.error], String(tenant)).toEqual([400, 'unsupported_grant_type']);
      }
      // The refusals used nothing up at acme: a fresh ID-JAG for acme still works there.
      expect((await redeem('acme', await jag(issuerOf('acme')))).status).toBe(200);
    });
  });
}

/**
 * RFC 8693 token exchange for resource servers, against a real upstream (oidc-provider): a downstream MCP client
 * (public, registered dynamically) signs in upstream and gets a Gatehouse access token for resource R; the resource
 * server's confidential client, configured for R and upstream `corp`, exchanges it for the user's upstream access
 * token, which works at the upstream's userinfo endpoint (it is the real one). Refused: a client not configured, a
 * public client, a subject token for another audience, an expired or revoked subject token, an upstream not allowed,
 * an audience not allowed; a Gatehouse token for an allowed audience is issued. Each exchange is logged
 * (`token_exchange`) without any token. Then `gatehouse/resource`'s createTokenExchangeClient, as a tool calls it:
 * the verified AuthInfo in, the upstream token out, cached, and a typed error asking for a new sign-in.
 */
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startExampleMcpServer, type ExampleMcpServer } from '../../examples/mcp-server/server.js';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/core/clock.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createLogger } from '../../src/server.js';
import {
  bearerErrorResponse,
  createResourceVerifier,
  createTokenExchangeClient,
  TokenExchangeError,
} from '../../src/resource/index.js';
import { FormBrowser } from '../helpers/browser.js';
import {
  ALICE as UPSTREAM_ALICE,
  signInUpstream,
  startOidcUpstream,
  type OidcUpstream,
} from '../helpers/oidc-upstream.js';
import { postForm } from '../helpers/oauth.js';
import { freePort, startServer, type TestServer } from '../helpers/server.js';
import { requireService } from '../helpers/services.js';
import { E2E_STORES } from '../helpers/stores.js';
import {
  authorizationRequest,
  backFromUpstream,
  redeem,
  registerClient,
  toUpstream,
} from '../helpers/upstream-flow.js';

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';
const R2 = 'https://other-mcp.example.com/mcp';
const R3 = 'https://api.example.com/';
const RS_SECRET = 'rs-secret-'.padEnd(40, 'x');

function upstreamEntry(
  upstream: OidcUpstream,
  id: string,
  name: string,
): NonNullable<ConfigInput['upstreams']>[number] {
  return {
    id,
    name,
    type: 'oidc',
    issuer: upstream.issuer,
    clientId: upstream.clientId,
    clientSecret: upstream.clientSecret,
    scopes: ['openid', 'email', 'profile'],
    timeoutMs: 1500,
  };
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

for (const store of E2E_STORES) {
  describe(`token exchange on the ${store.kind} store`, () => {
    const available = store.service ? requireService(store.service) : Promise.resolve(true);
    const isolation = `gh_tx_${randomBytes(4).toString('hex')}`;
    const clock: Clock & { offset: number } = { offset: 0, now: () => Date.now() + clock.offset };
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    let upstream: OidcUpstream;
    let server: TestServer;
    let downstream: { clientId: string; redirectUri: string };
    /** The example MCP server (examples/mcp-server), its upstream_profile tool exchanging as `rs`; R is its resource. */
    let mcp: ExampleMcpServer;
    let mcpPort: number;
    let R: string;

    beforeAll(async () => {
      if (!(await available)) return;
      const port = await freePort();
      mcpPort = await freePort();
      R = `http://localhost:${mcpPort}/mcp`;
      upstream = await startOidcUpstream({
        redirectUris: [`http://localhost:${port}/upstream/callback`],
        accounts: [UPSTREAM_ALICE],
      });
      server = await startServer(
        {
          users: [],
          scopes: ['mcp:read'],
          encryptionKey: randomBytes(32).toString('base64'),
          // Two entries for one provider: `other` is an upstream the resource server may not get tokens of.
          upstreams: [upstreamEntry(upstream, 'corp', 'Corp'), upstreamEntry(upstream, 'other', 'Other')],
          resources: [R, R2, R3],
          defaultResource: R,
          clients: [
            { client_id: 'rs', client_secret: RS_SECRET, grant_types: [EXCHANGE] },
            { client_id: 'rs-other', client_secret: RS_SECRET, grant_types: [EXCHANGE] },
            { client_id: 'rs-unlisted', client_secret: RS_SECRET, grant_types: [EXCHANGE] },
          ],
          tokenExchange: {
            resourceServers: [
              { clientId: 'rs', audiences: [R], upstreams: ['corp'], audiencesOut: [R3] },
              { clientId: 'rs-other', audiences: [R2], upstreams: ['corp'] },
            ],
          },
          ...store.config(isolation),
        },
        { port, clock, logger: createLogger('info', sink) },
      );
      downstream = await registerClient(server, 'mcp-client');
      const meta = (await (await fetch(`${upstream.issuer}/.well-known/openid-configuration`)).json()) as {
        userinfo_endpoint: string;
      };
      mcp = await startExampleMcpServer({
        port: mcpPort,
        issuer: server.issuer,
        upstream: { id: 'corp', profileUrl: meta.userinfo_endpoint, clientId: 'rs', clientSecret: RS_SECRET },
      });
    }, 60_000);

    afterAll(async () => {
      if (!(await available)) return;
      await mcp?.close();
      await server?.close();
      await upstream?.close();
      await store.cleanup?.(isolation);
    });

    /** Alice signs in at Corp for the downstream client: its Gatehouse tokens (access token for R). */
    async function signIn(): Promise<Record<string, string>> {
      const browser = new FormBrowser();
      const request = authorizationRequest(server, downstream);
      // mcp:read besides: what the example MCP server asks of every request.
      const url = new URL(request.url);
      url.searchParams.set('scope', 'openid offline_access mcp:read');
      const left = await toUpstream(browser, server, url.href, upstream.issuer, 'Corp');
      expect(left.upstream, left.page?.html.slice(0, 300)).toBeDefined();
      const callback = await signInUpstream(left.upstream!.href, { login: 'alice', browser });
      const back = await backFromUpstream(browser, server, callback.href);
      const code = back.client!.searchParams.get('code')!;
      const tokens = await redeem(server, downstream, code, request.verifier);
      expect(tokens.status, JSON.stringify(tokens.json)).toBe(200);
      return tokens.json as Record<string, string>;
    }

    function exchange(subjectToken: string, target: string, client = 'rs', extra: Record<string, string> = {}) {
      return postForm(
        `${server.issuer}/token`,
        {
          grant_type: EXCHANGE,
          subject_token: subjectToken,
          subject_token_type: ACCESS_TOKEN,
          requested_token_type: ACCESS_TOKEN,
          resource: target,
          ...extra,
        },
        { authorization: basic(client, RS_SECRET) },
      );
    }

    async function userinfoAtUpstream(accessToken: string): Promise<Response> {
      const meta = (await (await fetch(`${upstream.issuer}/.well-known/openid-configuration`)).json()) as {
        userinfo_endpoint: string;
      };
      return fetch(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${accessToken}` } });
    }

    const auditLines = () =>
      lines
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.audit === true && l.grantType === EXCHANGE);

    it('is advertised in the discovery document', async (t) => {
      if (!(await available)) return t.skip();
      const meta = (await (await fetch(`${server.issuer}/.well-known/oauth-authorization-server`)).json()) as {
        grant_types_supported: string[];
      };
      expect(meta.grant_types_supported).toContain(EXCHANGE);
    });

    it("gives the configured resource server the user's real upstream access token, and logs it without tokens", async (t) => {
      if (!(await available)) return t.skip();
      const tokens = await signIn();
      const res = await exchange(tokens.access_token!, 'urn:gatehouse:upstream:corp');
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      expect(res.headers.get('cache-control')).toContain('no-store');
      expect(res.json).toMatchObject({ issued_token_type: ACCESS_TOKEN, token_type: 'Bearer' });
      expect(res.json.expires_in).toBeGreaterThan(0);
      expect(res.json.refresh_token).toBeUndefined();
      const upstreamToken = res.json.access_token as string;
      expect(upstreamToken).not.toBe(tokens.access_token);
      const me = await userinfoAtUpstream(upstreamToken);
      expect(me.status).toBe(200);
      expect(await me.json()).toMatchObject({ sub: 'alice' });

      // The `audience` parameter names a target as well as `resource` does.
      const viaAudience = await postForm(
        `${server.issuer}/token`,
        {
          grant_type: EXCHANGE,
          subject_token: tokens.access_token!,
          subject_token_type: ACCESS_TOKEN,
          audience: 'urn:gatehouse:upstream:corp',
        },
        { authorization: basic('rs', RS_SECRET) },
      );
      expect(viaAudience.status, JSON.stringify(viaAudience.json)).toBe(200);
      expect(viaAudience.json.access_token).toBe(upstreamToken);

      const audit = auditLines().at(-1)!;
      expect(audit).toMatchObject({
        type: 'token.issued',
        clientId: 'rs',
        upstream: 'corp',
        outcome: 'success',
        subjectClientId: downstream.clientId,
      });
      expect(typeof audit.subject).toBe('string');
      const all = lines.join('\n');
      for (const secret of [tokens.access_token!, tokens.refresh_token!, upstreamToken, RS_SECRET]) {
        expect(all).not.toContain(secret);
      }
    });

    it('refuses clients that are not configured resource servers, and public clients', async (t) => {
      if (!(await available)) return t.skip();
      const { access_token: subject } = await signIn();
      const unlisted = await exchange(subject!, 'urn:gatehouse:upstream:corp', 'rs-unlisted');
      expect(unlisted.status).toBe(400);
      expect(unlisted.json.error).toBe('unauthorized_client');

      // The downstream client itself: public, and without the grant type.
      const asPublic = await postForm(`${server.issuer}/token`, {
        grant_type: EXCHANGE,
        client_id: downstream.clientId,
        subject_token: subject!,
        subject_token_type: ACCESS_TOKEN,
        resource: 'urn:gatehouse:upstream:corp',
      });
      expect(asPublic.status).toBe(400);
      expect(asPublic.json.error).toBe('unauthorized_client');

      const wrongSecret = await postForm(
        `${server.issuer}/token`,
        { grant_type: EXCHANGE, subject_token: subject!, subject_token_type: ACCESS_TOKEN, resource: R3 },
        { authorization: basic('rs', 'not-the-secret') },
      );
      expect(wrongSecret.status).toBe(401);
      expect(wrongSecret.json.error).toBe('invalid_client');

      // Dynamic registration cannot list the grant.
      const reg = await fetch(`${server.issuer}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          client_name: 'x',
          grant_types: [EXCHANGE],
          token_endpoint_auth_method: 'client_secret_basic',
        }),
      });
      expect(reg.status).toBe(400);
    });

    it('refuses targets the resource server may not have, and malformed requests', async (t) => {
      if (!(await available)) return t.skip();
      const { access_token: subject } = await signIn();
      for (const target of [
        'urn:gatehouse:upstream:other',
        'urn:gatehouse:upstream:nope',
        R2,
        'https://unknown.example/',
      ]) {
        const res = await exchange(subject!, target);
        expect(res.status, target).toBe(400);
        expect(res.json.error, target).toBe('invalid_target');
      }
      const noType = await exchange(subject!, R3, 'rs', {
        subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
      });
      expect(noType.json.error).toBe('invalid_request');
      const otherType = await exchange(subject!, R3, 'rs', {
        requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token',
      });
      expect(otherType.json.error).toBe('invalid_request');
      const garbage = await exchange('not-a-token', 'urn:gatehouse:upstream:corp');
      expect(garbage.json.error).toBe('invalid_grant');
      expect(auditLines().at(-1)).toMatchObject({
        type: 'token.refused',
        clientId: 'rs',
        outcome: 'failure',
        error: 'invalid_grant',
      });
    });

    it('refuses a subject token for another audience (another resource server)', async (t) => {
      if (!(await available)) return t.skip();
      const { access_token: subject } = await signIn();
      // rs-other may exchange tokens sent to R2 only; this one was sent to R.
      const res = await exchange(subject!, 'urn:gatehouse:upstream:corp', 'rs-other');
      expect(res.status).toBe(400);
      expect(res.json.error).toBe('invalid_grant');
    });

    it('mints a Gatehouse token for an allowed audience, same user, scope narrowed', async (t) => {
      if (!(await available)) return t.skip();
      const { access_token: subject } = await signIn();
      const res = await exchange(subject!, R3);
      expect(res.status, JSON.stringify(res.json)).toBe(200);
      expect(res.json.issued_token_type).toBe(ACCESS_TOKEN);
      const verified = await createResourceVerifier({ issuer: server.issuer, resource: R3 }).verify(
        res.json.access_token as string,
      );
      const original = await createResourceVerifier({ issuer: server.issuer, resource: R }).verify(subject!);
      expect(verified.subject).toBe(original.subject);
      expect(verified.clientId).toBe('rs');
      expect(verified.audience).toEqual([R3]);
      expect(verified.scopes).not.toContain('offline_access');
      const wider = await exchange(subject!, R3, 'rs', { scope: 'mcp:admin' });
      expect(wider.json.error).toBe('invalid_scope');
    });

    it('refuses a revoked subject token, and one whose grant is revoked (the exchanged token goes with it)', async (t) => {
      if (!(await available)) return t.skip();
      const tokens = await signIn();
      const exchanged = await exchange(tokens.access_token!, R3);
      expect(exchanged.status).toBe(200);
      const revoked = await postForm(`${server.issuer}/revoke`, {
        client_id: downstream.clientId,
        token: tokens.access_token!,
      });
      expect(revoked.status).toBe(200);
      const res = await exchange(tokens.access_token!, 'urn:gatehouse:upstream:corp');
      expect(res.json.error).toBe('invalid_grant');

      // Revoking the refresh token revokes the grant: its upstream tokens and the token minted by exchange go too.
      const again = await signIn();
      const minted = (await exchange(again.access_token!, R3)).json.access_token as string;
      await postForm(`${server.issuer}/revoke`, { client_id: downstream.clientId, token: again.refresh_token! });
      expect((await exchange(again.access_token!, 'urn:gatehouse:upstream:corp')).json.error).toBe('invalid_grant');
      const introspected = await postForm(
        `${server.issuer}/introspect`,
        { token: minted },
        { authorization: basic('rs', RS_SECRET) },
      );
      expect(introspected.json.active).toBe(false);
    });

    it('refuses an expired subject token', async (t) => {
      if (!(await available)) return t.skip();
      const { access_token: subject } = await signIn();
      clock.offset += 2 * 3600_000;
      try {
        const res = await exchange(subject!, 'urn:gatehouse:upstream:corp');
        expect(res.json.error).toBe('invalid_grant');
      } finally {
        clock.offset = 0;
      }
    });

    it('gatehouse/resource: a tool gets the upstream token in one call, cached, and a typed error to sign in again', async (t) => {
      if (!(await available)) return t.skip();
      const tokens = await signIn();
      const verifier = createResourceVerifier({ issuer: server.issuer, resource: R });
      let calls = 0;
      const { upstreamToken, accessTokenFor } = createTokenExchangeClient({
        issuer: server.issuer,
        clientId: 'rs',
        clientSecret: RS_SECRET,
        fetch: (input, init) => {
          if (String(input).endsWith('/token')) calls++;
          return fetch(input, init);
        },
      });
      // What an MCP tool has: extra.authInfo, the verifier's AuthInfo.
      const authInfo = await verifier.verify(tokens.access_token!);
      const gh = await upstreamToken(authInfo, 'corp');
      expect((await userinfoAtUpstream(gh)).status).toBe(200);
      expect(await upstreamToken(authInfo, 'corp')).toBe(gh);
      expect(calls).toBe(1);
      expect(await accessTokenFor(authInfo, R3)).toMatch(/^ey/);

      const refused = await upstreamToken(authInfo, 'other').catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(TokenExchangeError);
      expect(refused).toMatchObject({ code: 'invalid_target', signInAgain: false });

      await postForm(`${server.issuer}/revoke`, { client_id: downstream.clientId, token: tokens.refresh_token! });
      const fresh = await verifier.verify((await signIn()).access_token!);
      await postForm(`${server.issuer}/revoke`, { client_id: downstream.clientId, token: fresh.token });
      const gone = await upstreamToken(fresh, 'corp').catch((e: unknown) => e);
      expect(gone).toBeInstanceOf(TokenExchangeError);
      expect(gone).toMatchObject({ code: 'invalid_grant', status: 400, signInAgain: true });
      // What the resource server answers its client: a 401 challenge, so the MCP client authorizes again.
      const answer = bearerErrorResponse((gone as TokenExchangeError).toResourceAuthError(), {
        resourceMetadataUrl: 'https://mcp.example.com/.well-known/oauth-protected-resource',
      });
      expect(answer.status).toBe(401);
      expect(answer.headers['www-authenticate']).toMatch(/^Bearer resource_metadata="[^"]+", error="invalid_token"/);
      expect((refused as TokenExchangeError).toResourceAuthError().status).toBe(503);
    });

    it('the example MCP server: a tool reads the profile at the upstream, through the MCP SDK client', async (t) => {
      if (!(await available)) return t.skip();
      const tokens = await signIn();
      const callTool = async (accessToken: string) => {
        const client = new Client({ name: 'test', version: '1.0.0' });
        await client.connect(
          new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${mcpPort}/mcp`), {
            requestInit: { headers: { authorization: `Bearer ${accessToken}` } },
          }),
        );
        try {
          return await client.callTool({ name: 'upstream_profile', arguments: {} });
        } finally {
          await client.close();
        }
      };
      const result = await callTool(tokens.access_token!);
      expect(result.isError, JSON.stringify(result)).toBeFalsy();
      expect(result.structuredContent).toMatchObject({ sub: 'alice' });

      // The grant revoked (its upstream tokens with it): the JWT still verifies at the MCP server (no introspection),
      // and the tool, refused at the exchange (invalid_grant), asks the user to sign in again.
      const next = await signIn();
      await postForm(`${server.issuer}/revoke`, { client_id: downstream.clientId, token: next.refresh_token! });
      const again = await callTool(next.access_token!);
      expect(again.isError).toBe(true);
      expect(JSON.stringify(again.content)).toContain('sign in with corp again');
    });
  });
}

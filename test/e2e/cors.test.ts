/**
 * The CORS contract, over HTTP: browser-based clients (MCP Inspector) may call the metadata, JWKS, pushed
 * authorization request, token, registration, revocation, introspection and userinfo endpoints from any origin,
 * without credentials; the pages (/authorize, /interaction) and everything else send no CORS headers at all, so no
 * other origin can read them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

const ORIGIN = 'http://localhost:6274';
const EXPOSED = 'WWW-Authenticate, Retry-After, ...';

/**
 * Every response header whose name starts with access-control-. Expose-headers is checked for the two headers a
 * browser client needs (others, e.g. a request id, may be added to the list).
 */
function corsHeaders(res: Response): Record<string, string> {
  const out: Record<string, string> = {};
  res.headers.forEach((value, name) => {
    if (name.startsWith('access-control-')) out[name] = value;
  });
  const exposed = out['access-control-expose-headers']?.split(/\s*,\s*/).map((h) => h.toLowerCase());
  if (exposed?.includes('www-authenticate') && exposed.includes('retry-after'))
    out['access-control-expose-headers'] = EXPOSED;
  return out;
}

for (const issuerPath of ['', '/tenant']) {
  describe(`CORS with issuer path "${issuerPath}"`, () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startServer({}, { issuerPath });
    });
    afterAll(async () => server?.close());

    const listed = () => {
      const p = issuerPath;
      const wellKnown = p
        ? [
            `/.well-known/oauth-authorization-server${p}`,
            `/.well-known/openid-configuration${p}`,
            `${p}/.well-known/openid-configuration`,
            `${p}/.well-known/oauth-authorization-server`,
          ]
        : ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'];
      return [
        ...wellKnown,
        ...[
          '/jwks.json',
          '/par',
          '/device_authorization',
          '/token',
          '/register',
          '/register/some-client',
          '/revoke',
          '/introspect',
          '/userinfo',
        ].map((x) => p + x),
      ];
    };

    it('answers a preflight on every listed endpoint: 204, any origin, no credentials', async () => {
      for (const path of listed()) {
        for (const headers of [{ origin: ORIGIN, 'access-control-request-method': 'POST' }, {}] as Record<
          string,
          string
        >[]) {
          const res = await fetch(server.origin + path, { method: 'OPTIONS', headers });
          expect(res.status, path).toBe(204);
          expect(corsHeaders(res), path).toEqual({
            'access-control-allow-origin': '*',
            'access-control-expose-headers': EXPOSED,
            'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
            'access-control-allow-headers': 'Authorization, Content-Type, MCP-Protocol-Version, DPoP',
            'access-control-max-age': '86400',
          });
        }
      }
    });

    it('marks every response of a listed endpoint readable by any origin, errors included', async () => {
      for (const path of listed()) {
        const method = path.includes('.well-known') || path.endsWith('/jwks.json') ? 'GET' : 'POST';
        const res = await fetch(server.origin + path, { method, headers: { origin: ORIGIN } });
        expect(corsHeaders(res), `${method} ${path} (${res.status})`).toEqual({
          'access-control-allow-origin': '*',
          'access-control-expose-headers': EXPOSED,
        });
        // One answer for every origin: a shared cache keeps one copy of the (publicly cacheable) metadata and JWKS.
        expect(res.headers.get('vary') ?? '', path).not.toMatch(/origin/i);
      }
    });

    it('sends no CORS header on the pages or on any other path, and no preflight answer there', async () => {
      const p = issuerPath;
      for (const path of [
        `${p}/authorize`,
        `${p}/device`,
        `${p}/device/done`,
        `${p}/interaction/x`,
        `${p}/interaction/x/login`,
        `${p}/health`,
        `${p}/nope`,
        `${p}/tokens`,
        `${p}/registerx`,
      ]) {
        const get = await fetch(server.origin + path, { headers: { origin: ORIGIN } });
        expect(corsHeaders(get), `GET ${path} (${get.status})`).toEqual({});
        expect(get.headers.get('vary') ?? '', path).not.toMatch(/origin/i);
        const pre = await fetch(server.origin + path, {
          method: 'OPTIONS',
          headers: { origin: ORIGIN, 'access-control-request-method': 'POST' },
        });
        expect(pre.status, `OPTIONS ${path}`).not.toBe(204);
        expect(corsHeaders(pre), `OPTIONS ${path}`).toEqual({});
      }
    });
  });
}

/** RFC 7591 registration and RFC 7592 management over HTTP, including the redirect URIs real clients register. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, postForm, postJson } from '../helpers/oauth.js';
import { startServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ scopes: ['mcp:read'], registration: { allowClientCredentials: true } });
});
afterAll(() => server.close());

const reg = (body: unknown, headers: Record<string, string> = {}) =>
  postJson(`${server.issuer}/register`, body, headers);

async function manage(method: string, uri: string, token: string, body?: unknown) {
  const res = await fetch(uri, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : {}, headers: res.headers };
}

describe('RFC 7591 registration', () => {
  it('registers a confidential client: secret returned once, stored only as a hash', async () => {
    // Strict by default: a scope the server does not know is refused, naming it and the setting that declares scopes.
    const unknown = await reg({
      client_name: 'Svc',
      grant_types: ['client_credentials'],
      scope: 'mcp:read unknown:scope',
    });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toBe('invalid_client_metadata');
    expect(unknown.json.error_description).toContain('unknown:scope');
    expect(unknown.json.error_description).toContain('"scopes" setting');
    const r = await reg({ client_name: 'Svc', grant_types: ['client_credentials'], scope: 'mcp:read' });
    expect(r.status).toBe(201);
    expect(r.headers.get('cache-control')).toBe('no-store');
    expect(r.json.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(r.json.client_secret_expires_at).toBe(0);
    expect(r.json.token_endpoint_auth_method).toBe('client_secret_basic');
    expect(r.json.scope).toBe('mcp:read');
    expect(r.json.registration_client_uri).toBe(`${server.issuer}/register/${r.json.client_id}`);
    const stored = await server.gatehouse.deps.storage.getClient(r.json.client_id);
    expect(JSON.stringify(stored)).not.toContain(r.json.client_secret);
    expect(JSON.stringify(stored)).not.toContain(r.json.registration_access_token);
  });

  it('accepts the redirect URIs real clients register', async () => {
    for (const uris of [
      ['http://127.0.0.1:33418/', 'http://127.0.0.1/', 'https://vscode.dev/redirect'],
      ['http://localhost/callback'],
      ['http://[::1]/cb'],
      ['cursor://anysphere.cursor-mcp/oauth/callback'],
      ['com.example.app:/oauth2redirect'],
      ['http://localhost:6274/oauth/callback'],
    ]) {
      const r = await reg({ redirect_uris: uris, token_endpoint_auth_method: 'none' });
      expect(r.status, uris.join()).toBe(201);
      expect(r.json.client_secret).toBeUndefined();
    }
    const native = await reg({ redirect_uris: ['cursor://x/cb'], token_endpoint_auth_method: 'none' });
    expect(native.json.application_type).toBe('native');
  });

  it('refuses bad redirect URIs and inconsistent metadata with the RFC 7591 §3.2.2 codes', async () => {
    const cases: [unknown, string][] = [
      [{ redirect_uris: ['http://example.com/cb'] }, 'invalid_redirect_uri'],
      [{ redirect_uris: ['https://example.com/cb#frag'] }, 'invalid_redirect_uri'],
      [{ redirect_uris: ['javascript:alert(1)'] }, 'invalid_redirect_uri'],
      [{ redirect_uris: ['/relative'] }, 'invalid_redirect_uri'],
      [{ redirect_uris: ['cursor://x/cb'], application_type: 'web' }, 'invalid_redirect_uri'],
      [{}, 'invalid_redirect_uri'],
      [{ redirect_uris: ['https://a.example/cb'], response_types: ['token'] }, 'invalid_client_metadata'],
      [{ redirect_uris: ['https://a.example/cb'], grant_types: ['password'] }, 'invalid_client_metadata'],
      [{ grant_types: ['client_credentials'], token_endpoint_auth_method: 'none' }, 'invalid_client_metadata'],
      [
        { redirect_uris: ['https://a.example/cb'], token_endpoint_auth_method: 'tls_client_auth' },
        'invalid_client_metadata',
      ],
      [{ redirect_uris: ['https://a.example/cb'], application_type: 'desktop' }, 'invalid_client_metadata'],
    ];
    for (const [body, error] of cases) {
      const r = await reg(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error, JSON.stringify(body)).toBe(error);
    }
  });
});

describe('RFC 7592 management', () => {
  it('reads, updates and deletes with the registration access token', async () => {
    const r = await reg({
      redirect_uris: ['https://app.example/cb'],
      client_name: 'App',
      grant_types: ['authorization_code', 'refresh_token'],
    });
    const {
      registration_client_uri: uri,
      registration_access_token: rat,
      client_id: id,
      client_secret: secret,
    } = r.json;

    const read = await manage('GET', uri, rat);
    expect(read.status).toBe(200);
    expect(read.json.client_name).toBe('App');
    expect(read.json.client_secret).toBeUndefined();
    expect((await manage('GET', uri, 'wrong-token')).status).toBe(401);
    const otherClient = await reg({ redirect_uris: ['https://b.example/cb'] });
    expect((await manage('GET', uri, otherClient.json.registration_access_token)).status).toBe(401);

    const updated = await manage('PUT', uri, rat, {
      client_id: id,
      redirect_uris: ['https://app.example/cb2'],
      client_name: 'App 2',
      grant_types: ['authorization_code'],
    });
    expect(updated.status).toBe(200);
    expect(updated.json.redirect_uris).toEqual(['https://app.example/cb2']);
    expect(updated.json.client_name).toBe('App 2');
    expect(
      (await manage('PUT', uri, rat, { client_id: 'someone-else', redirect_uris: ['https://app.example/cb'] })).json
        .error,
    ).toBe('invalid_client_metadata');
    expect(
      (await manage('PUT', uri, rat, { client_id: id, redirect_uris: ['http://evil.example/cb'] })).json.error,
    ).toBe('invalid_redirect_uri');

    expect((await manage('DELETE', uri, rat)).status).toBe(204);
    expect((await manage('GET', uri, rat)).status).toBe(401);
    const token = await postForm(
      `${server.issuer}/token`,
      { grant_type: 'refresh_token', refresh_token: 'x' },
      { authorization: basic(id, secret) },
    );
    expect(token.json.error).toBe('invalid_client');
  });
});

describe('closed registration', () => {
  it('requires the initial access token when configured, and allows client_credentials with it', async () => {
    const closed = await startServer({ registration: { initialAccessToken: 'initial-access-token-0123456789' } });
    try {
      const url = `${closed.issuer}/register`;
      const none = await postJson(url, { redirect_uris: ['https://a.example/cb'] });
      expect(none.status).toBe(401);
      expect(none.json.error).toBe('invalid_token');
      expect(
        (
          await postJson(
            url,
            { redirect_uris: ['https://a.example/cb'] },
            { authorization: 'Bearer wrong-token-value' },
          )
        ).status,
      ).toBe(401);
      const ok = await postJson(
        url,
        { grant_types: ['client_credentials'] },
        { authorization: 'Bearer initial-access-token-0123456789' },
      );
      expect(ok.status).toBe(201);
    } finally {
      await closed.close();
    }
  });

  it('disabled registration is not advertised and refuses requests', async () => {
    const off = await startServer({ registration: { enabled: false } });
    try {
      const meta = await (await fetch(`${off.origin}/.well-known/oauth-authorization-server`)).json();
      expect(meta.registration_endpoint).toBeUndefined();
      expect((await postJson(`${off.issuer}/register`, { redirect_uris: ['https://a.example/cb'] })).status).toBe(401);
    } finally {
      await off.close();
    }
  });
});

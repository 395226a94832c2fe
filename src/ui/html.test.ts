import { describe, expect, it } from 'vitest';
import { contrastRatio, pageBranding, PAGE_HEADERS, readableTextOn } from './html.js';
import { DEFAULT_STRINGS, html, message, pageStrings, scopeDescription } from './strings.js';
import { applicationIdentity, clientHost, loginPage } from './pages.js';
import type { ClientRecord } from '../model/records.js';

describe('readable text on the primary colour', () => {
  it('reaches 4.5:1 on every colour of a 4096-colour grid', () => {
    const hex = '0123456789abcdef';
    let worst = 21;
    for (const r of hex)
      for (const g of hex)
        for (const b of hex) {
          const colour = `#${r}${g}${b}`;
          worst = Math.min(worst, contrastRatio(colour, readableTextOn(colour)));
        }
    expect(worst).toBeGreaterThanOrEqual(4.5);
  });

  it('puts black on yellow and white on navy, and says so in the branded stylesheet', () => {
    expect(readableTextOn('#ffd400')).toBe('#000000');
    expect(readableTextOn('#001f5c')).toBe('#ffffff');
    const branded = pageBranding({ primaryColor: '#ffd400' });
    expect(branded.html(loginPage({ action: '/a', csrf: 'c' }))).toContain('background:#ffd400;color:#000000');
    expect(branded.headers(PAGE_HEADERS)['content-security-policy']!.match(/'sha256-/g)).toHaveLength(2);
  });
});

describe('page strings', () => {
  it('English by default; overrides by key, flow messages by their text, lang, scopes and resources', () => {
    expect(pageStrings()).toBe(DEFAULT_STRINGS);
    const t = pageStrings({
      lang: 'fr',
      strings: { 'signIn.title': 'Connexion', 'Invalid username or password.': 'Identifiants invalides.' },
      scopeDescriptions: { 'mcp:read': 'Lire vos outils' },
      resourceNames: { 'https://rs.example/': 'Outils' },
    });
    expect(t['signIn.title']).toBe('Connexion');
    expect(t['page.lang']).toBe('fr');
    expect(message(t, 'Invalid username or password.')).toBe('Identifiants invalides.');
    expect(message(t, 'Something else.')).toBe('Something else.');
    expect(scopeDescription(t, 'mcp:read')).toBe('Lire vos outils');
    expect(scopeDescription(t, 'openid')).toBe(DEFAULT_STRINGS['scope.openid']);
    expect(scopeDescription(t, 'unknown:scope')).toBe('unknown:scope');
    const page = loginPage({ action: '/a', csrf: 'c', strings: t });
    expect(page).toContain('<html lang="fr">');
    expect(page).toContain('<h1>Connexion</h1>');
  });

  it('escapes a configured template, and puts values in as given (HTML the caller escaped)', () => {
    const t = pageStrings({ strings: { 'consent.notYou': '<b>Pas</b> {username} ?' } });
    expect(html(t, 'consent.notYou', { username: '&lt;x&gt;' })).toBe('&lt;b&gt;Pas&lt;/b&gt; &lt;x&gt; ?');
  });
});

describe('the host a client is shown by', () => {
  const client = (over: Partial<ClientRecord>): ClientRecord =>
    ({ clientId: 'c1', redirectUris: ['https://app.example/cb'], source: 'dynamic', ...over }) as ClientRecord;

  it('dynamic: the redirect URI host; a self-asserted client_uri elsewhere is flagged, never shown as the host', () => {
    expect(clientHost(client({}), 'https://app.example/cb')).toEqual({ host: 'app.example', source: 'redirect_uri' });
    expect(clientHost(client({ clientUri: 'https://bank.example' }), 'https://app.example/cb')).toEqual({
      host: 'app.example',
      source: 'redirect_uri',
      claimed: 'bank.example',
    });
    expect(clientHost(client({ clientUri: 'https://app.example/about' }), 'https://app.example/cb').claimed).toBe(
      undefined,
    );
  });

  it('configured by the operator: its client_uri host, flagged when the browser goes back elsewhere', () => {
    const configured = client({ source: 'static', clientUri: 'https://notes.example' });
    expect(clientHost(configured, 'https://notes.example/cb')).toEqual({ host: 'notes.example', source: 'client_uri' });
    expect(clientHost(configured, 'http://127.0.0.1:3000/cb')).toEqual({
      host: 'notes.example',
      source: 'client_uri',
      claimed: '127.0.0.1',
    });
    expect(clientHost(client({ source: 'static' }), 'https://app.example/cb').source).toBe('redirect_uri');
  });

  it('a metadata-document client: the host of its client_id URL', () => {
    const doc = client({ source: 'metadata_document', clientId: 'https://tools.example/client.json' });
    expect(clientHost(doc, 'http://localhost:4000/cb')).toEqual({ host: 'tools.example', source: 'metadata_document' });
  });

  it('the account page names an application without a request: first redirect URI, name when not the host', () => {
    expect(applicationIdentity(client({ clientName: 'Notes' }), 'c1')).toEqual({ host: 'app.example', name: 'Notes' });
    expect(applicationIdentity(client({ clientName: 'app.example' }), 'c1')).toEqual({ host: 'app.example' });
    expect(applicationIdentity(undefined, 'gone-client')).toEqual({ host: 'gone-client' });
  });
});

import { describe, expect, it } from 'vitest';
import { contrastRatio, pageBranding, PAGE_HEADERS, readableTextOn } from './html.js';
import { DEFAULT_STRINGS, html, message, pageStrings, scopeDescription } from './strings.js';
import { loginPage } from './pages.js';

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

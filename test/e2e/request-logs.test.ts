/**
 * Per-request log lines (debug and trace) name the path only: no query string (a client may put a token in it) and no
 * interaction id (it names a pending sign-in).
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/server.js';
import { FormBrowser } from '../helpers/browser.js';
import { challenge, postJson, verifier } from '../helpers/oauth.js';
import { ALICE, startServer } from '../helpers/server.js';

const REDIRECT = 'http://127.0.0.1/callback';
const QUERY_SECRET = 'secret-xyz';

describe('request logs', () => {
  for (const level of ['debug', 'trace'] as const) {
    it(`at ${level} level carry neither query strings nor interaction ids`, async () => {
      const lines: string[] = [];
      const sink = new Writable({
        write(chunk, _enc, cb) {
          lines.push(chunk.toString());
          cb();
        },
      });
      const server = await startServer({}, { logger: createLogger(level, sink) });
      try {
        const clientId = (
          await postJson(`${server.issuer}/register`, { redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' })
        ).json.client_id;
        const u = new URL(`${server.issuer}/authorize`);
        u.search = new URLSearchParams({
          client_id: clientId,
          redirect_uri: REDIRECT,
          response_type: 'code',
          code_challenge: challenge(verifier()),
          code_challenge_method: 'S256',
          scope: 'openid',
          access_token: QUERY_SECRET,
        }).toString();
        const browser = new FormBrowser();
        const start = await browser.request(u.href);
        expect(start.status).toBe(303);
        const interactionUrl = new URL(start.headers.get('location')!, server.origin);
        const interactionId = decodeURIComponent(interactionUrl.pathname.split('/').pop()!);
        expect(interactionId.length).toBeGreaterThan(20);
        // The interaction page, also with a token in its query, then sign-in and consent.
        const page = await browser.request(`${interactionUrl.href}?access_token=${QUERY_SECRET}`);
        expect(page.status).toBe(200);
        const cb = await browser.authorize(interactionUrl.href, server.origin, ALICE);
        expect(cb.searchParams.get('code')).toBeTruthy();
        await fetch(`${server.issuer}/userinfo?access_token=${QUERY_SECRET}`);

        const all = lines.join('\n');
        const requestLines = lines.filter((l) => l.includes('"req":'));
        expect(requestLines.length).toBeGreaterThan(5); // the test must see the per-request lines
        expect(all).toContain('/interaction/[redacted]/login');
        expect(all.includes(QUERY_SECRET), 'query string leaked into the log').toBe(false);
        expect(all.includes(interactionId), 'interaction id leaked into the log').toBe(false);
        expect(all.includes(encodeURIComponent(interactionId)), 'interaction id leaked into the log').toBe(false);
        for (const line of requestLines) expect(JSON.parse(line).req.url).not.toContain('?');
      } finally {
        await server.close();
      }
    });
  }
});

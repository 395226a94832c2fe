/**
 * The Client ID Metadata Document cache, seen from the document server: a document is fetched once while cached
 * (300 s without caching headers), again from its expiry on the server's clock, and a full cache
 * (clientIdMetadataDocuments.cacheMaxEntries) drops the least recently used document.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/core/clock.js';
import { startCimdServer, type CimdServer } from '../helpers/cimd-server.js';
import { challenge, verifier } from '../helpers/oauth.js';
import { startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://localhost/callback';
let cimd: CimdServer;
let server: TestServer;
const clock = new ManualClock(Date.now());
/** Paths the document server was asked for, in order. */
const fetched: string[] = [];

beforeAll(async () => {
  cimd = await startCimdServer();
  const get = cimd.docs.get.bind(cimd.docs);
  cimd.docs.get = (path: string) => {
    fetched.push(path);
    return get(path);
  };
  for (const name of ['a', 'b', 'c']) {
    cimd.docs.set(`/${name}.json`, {
      body: JSON.stringify({
        client_id: `${cimd.origin}/${name}.json`,
        client_name: name,
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'none',
      }),
    });
  }
  server = await startServer(
    {
      scopes: ['mcp:read'],
      clientIdMetadataDocuments: {
        allowPrivateAddresses: true,
        trustedCaFile: cimd.caFile,
        timeoutMs: 2000,
        cacheMaxEntries: 2,
      },
    },
    { clock },
  );
});
afterAll(async () => {
  await server?.close();
  cimd?.close();
});

/** An authorization request naming the document client `name`; the server resolves the client first. */
async function authorize(name: string): Promise<void> {
  const u = new URL(`${server.issuer}/authorize`);
  u.search = new URLSearchParams({
    client_id: `${cimd.origin}/${name}.json`,
    redirect_uri: REDIRECT,
    response_type: 'code',
    code_challenge: challenge(verifier()),
    code_challenge_method: 'S256',
    state: 's',
  }).toString();
  const res = await fetch(u, { redirect: 'manual' });
  await res.text();
  // A known client gets the sign-in (directly or via the interaction page), never an error.
  expect([200, 302, 303]).toContain(res.status);
}

describe('Client ID Metadata Document cache', () => {
  it('fetches a document once while cached and again from its expiry; when full drops the least recently used', async () => {
    await authorize('a');
    await authorize('a');
    expect(fetched).toEqual(['/a.json']);
    clock.advance(300_000 - 1);
    await authorize('a');
    expect(fetched).toEqual(['/a.json']);
    clock.advance(1);
    await authorize('a');
    expect(fetched).toEqual(['/a.json', '/a.json']);

    fetched.length = 0;
    await authorize('b');
    await authorize('a'); // a hit: a is now the most recently used
    await authorize('c'); // full (2): b makes room
    await authorize('a');
    expect(fetched).toEqual(['/b.json', '/c.json']);
    await authorize('b');
    expect(fetched).toEqual(['/b.json', '/c.json', '/b.json']);
  });
});

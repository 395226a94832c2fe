/**
 * Requests the router refuses before any route runs (found by the fuzz tests): a malformed percent-encoding in the
 * path, a path parameter over Fastify's length limit. They must be OAuth JSON errors like every other refusal, not
 * Fastify's own `{"error":"Bad Request","code":"FST_ERR_..."}` bodies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUZZ_STORES, startFuzzServer, type FuzzServer } from './harness.js';

describe('router refusals are OAuth errors', () => {
  let fz: FuzzServer;
  beforeAll(async () => {
    fz = (await startFuzzServer(FUZZ_STORES[0]!))!;
  });
  afterAll(() => fz.close());

  it.each([
    ['GET', '/register/%', 400, 'json'],
    ['PUT', '/register/%ZZ', 400, 'json'],
    ['GET', `/register/${'a'.repeat(101)}`, 414, 'json'],
    // Browser pages get the error page rather than JSON.
    ['GET', '/interaction/%E0%A4%A', 400, 'page'],
    ['POST', '/interaction/%/login', 400, 'page'],
    ['GET', `/interaction/${'a'.repeat(101)}`, 414, 'page'],
  ] as const)('%s %s answers %i invalid_request (%s), never echoing the URL', async (method, url, status, kind) => {
    const res = await fz.inject({
      method,
      url,
      headers: { authorization: 'Bearer x', 'content-type': 'application/x-www-form-urlencoded' },
      payload: method === 'GET' ? undefined : 'a=b',
    });
    expect(res.status).toBe(status);
    expect(res.headers['cache-control']).toBe('no-store');
    const segment = url.split('/')[2]!;
    if (segment.length > 3) expect(res.body).not.toContain(segment.slice(0, 20));
    expect(res.body).not.toContain('FST_ERR');
    if (kind === 'json') {
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect((res.json as { error: string }).error).toBe('invalid_request');
    } else {
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.body).toContain('invalid_request');
    }
  });
});

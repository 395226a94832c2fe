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
    ['GET', '/register/%', 400],
    ['PUT', '/register/%ZZ', 400],
    ['GET', '/interaction/%E0%A4%A', 400],
    ['POST', '/interaction/%/login', 400],
    ['GET', `/register/${'a'.repeat(101)}`, 414],
    ['GET', `/interaction/${'a'.repeat(101)}`, 414],
  ] as const)('%s %s answers %i invalid_request as JSON', async (method, url, status) => {
    const res = await fz.inject({ method, url, headers: { authorization: 'Bearer x', 'content-type': 'application/x-www-form-urlencoded' }, payload: method === 'GET' ? undefined : 'a=b' });
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.json).toEqual({ error: 'invalid_request', error_description: 'malformed request' });
  });
});

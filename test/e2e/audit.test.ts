/**
 * Audit events (core/audit.ts): each step of a full flow emits its event with the request's id, address and user
 * agent, per tenant; no secret, code or token used in the flow appears in any event.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/core/audit.js';
import { startServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://127.0.0.1/callback';
let server: TestServer;
const events: AuditRecord[] = [];

beforeAll(async () => {
  server = await startServer({}, { auditSink: (e) => events.push(e) });
});
afterAll(() => server.close());

describe('audit events', () => {
  it('a registration carries the request id, address and user agent', async () => {
    const res = await fetch(`${server.issuer}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'audit-test/1.0', 'x-request-id': 'req-audit-1' },
      body: JSON.stringify({ redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none', client_name: 'Audit' }),
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as { client_id: string };
    const event = events.find((e) => e.type === 'client.registered' && e.clientId === body.client_id);
    expect(event).toMatchObject({
      type: 'client.registered',
      outcome: 'success',
      source: 'dynamic',
      clientName: 'Audit',
      requestId: 'req-audit-1',
      ip: '127.0.0.1',
      userAgent: 'audit-test/1.0',
    });
    expect(event).not.toHaveProperty('tenant');
    expect(Date.parse(event!.time)).toBeGreaterThan(0);
  });
});

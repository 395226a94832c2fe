/**
 * The HTTP edge: connection limits against slow and idle clients (config `http`), the registration rate limit and
 * client cap (config `registration.rateLimit`, `registration.maxClients`) shared across replicas, NUL bytes refused
 * before they reach a store, and framework errors (bad URL, over-long path parameter) answered as OAuth errors.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../helpers/server.js';

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(...args: Parameters<typeof startServer>): Promise<TestServer> {
  const server = await startServer(...args);
  servers.push(server);
  return server;
}

/** A raw client socket: what it received and when the server closed it (ms after `opened`). */
interface RawClient {
  socket: Socket;
  opened: number;
  received: () => string;
  /** Resolves with ms from open to close, or Infinity if still open after `capMs`. */
  closedWithin: (capMs: number) => Promise<number>;
}

function rawClient(origin: string): Promise<RawClient> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname === 'localhost' ? '127.0.0.1' : hostname);
    let data = '';
    let closedAt: number | undefined;
    const closed = new Promise<void>((r) => socket.once('close', () => r()));
    socket.on('data', (d) => (data += d.toString()));
    socket.on('error', () => undefined); // a reset by the server is the point of some tests
    socket.once('close', () => (closedAt = Date.now()));
    socket.once('connect', () => {
      const opened = Date.now();
      resolve({
        socket,
        opened,
        received: () => data,
        closedWithin: async (capMs) => {
          await Promise.race([closed, new Promise((r) => setTimeout(r, Math.max(0, opened + capMs - Date.now())))]);
          return closedAt === undefined ? Infinity : closedAt - opened;
        },
      });
    });
    socket.once('error', reject);
  });
}

/** Sends full headers announcing a body, then one body byte every `everyMs` (never finishing in time). */
async function slowBody(origin: string, everyMs = 100): Promise<RawClient> {
  const client = await rawClient(origin);
  client.socket.write(
    'POST /token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 2000\r\n\r\ngrant_type=',
  );
  const timer = setInterval(() => (client.socket.writable ? client.socket.write('a') : clearInterval(timer)), everyMs);
  client.socket.once('close', () => clearInterval(timer));
  return client;
}

const stopAll = (clients: RawClient[]) => clients.forEach((c) => c.socket.destroy());

describe('connection limits (config http)', () => {
  const http = { requestTimeoutMs: 1000, headersTimeoutMs: 600, keepAliveTimeoutMs: 400, connectionTimeoutMs: 5000 };

  it('closes a connection whose body trickles in slower than requestTimeoutMs, with 408', async () => {
    const server = await start({ http });
    const client = await slowBody(server.origin);
    const ms = await client.closedWithin(8000);
    stopAll([client]);
    // requestTimeoutMs plus one sweep of Node's connection check (a quarter of the smaller timeout) and slack.
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(4000);
    expect(client.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes a connection whose headers trickle in slower than headersTimeoutMs', async () => {
    const server = await start({ http });
    const client = await rawClient(server.origin);
    client.socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\n');
    const timer = setInterval(() => client.socket.writable && client.socket.write('X-Slow: 1\r\n'), 100);
    const ms = await client.closedWithin(8000);
    clearInterval(timer);
    stopAll([client]);
    expect(ms).toBeLessThan(4000);
  });

  it('many slow-body connections do not stop /health answering, and all of them are closed', async () => {
    const server = await start({ http });
    const clients = await Promise.all(Array.from({ length: 200 }, () => slowBody(server.origin, 200)));
    try {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${server.origin}/health`, { signal: AbortSignal.timeout(2000) });
        expect(res.status).toBe(200);
      }
      const times = await Promise.all(clients.map((c) => c.closedWithin(8000)));
      expect(Math.max(...times)).toBeLessThan(5000);
      expect((await fetch(`${server.origin}/health`, { signal: AbortSignal.timeout(2000) })).status).toBe(200);
    } finally {
      stopAll(clients);
    }
  });

  it('closes an idle keep-alive connection after keepAliveTimeoutMs, and a socket after maxRequestsPerSocket', async () => {
    const server = await start({ http: { ...http, maxRequestsPerSocket: 2 } });
    const client = await rawClient(server.origin);
    const request = 'GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n';
    client.socket.write(request);
    await new Promise((r) => setTimeout(r, 200));
    const secondAt = Date.now();
    client.socket.write(request);
    const ms = (await client.closedWithin(3000)) - (secondAt - client.opened);
    const responses = client.received().split('HTTP/1.1 ').slice(1);
    expect(responses).toHaveLength(2);
    expect(responses[0]).toMatch(/^200 [\s\S]*connection: keep-alive/i);
    // The second request was the socket's last: the server says so and ends the connection.
    expect(responses[1]).toMatch(/^200 [\s\S]*connection: close/i);
    expect(ms).toBeLessThan(3000);

    const idle = await rawClient(server.origin);
    idle.socket.write(request);
    const idleMs = await idle.closedWithin(3000);
    expect(idle.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(idleMs).toBeGreaterThanOrEqual(350);
    expect(idleMs).toBeLessThan(2500);
  });

  it('refuses a headersTimeoutMs above requestTimeoutMs at start', async () => {
    await expect(start({ http: { requestTimeoutMs: 1000, headersTimeoutMs: 2000 } })).rejects.toThrow(/headersTimeoutMs/);
  });
});

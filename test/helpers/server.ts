/** Starts a real Gatehouse on a random loopback port for end-to-end tests. */
import { createServer } from 'node:net';
import { parseConfig } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import { createGatehouse, createLogger, type Gatehouse, type GatehouseOptions } from '../../src/server.js';

/** A free TCP port on 127.0.0.1 (bound and released). */
/**
 * A port held open until `release()`: for a test that must know its port long before it listens (an upstream
 * started first with our redirect URI), so no other server of the parallel tests takes it meanwhile.
 */
export async function reservePort(): Promise<{ port: number; release: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      resolve({ port, release: () => new Promise<void>((done) => srv.close(() => done())) });
    });
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface TestServer {
  gatehouse: Gatehouse;
  issuer: string;
  /** Base URL the server listens on (same origin as the issuer). */
  origin: string;
  close(): Promise<void>;
}

/** Test users every server starts with. */
export const ALICE = {
  username: 'alice',
  password: 'correct horse battery staple',
  email: 'alice@example.com',
  name: 'Alice',
};
export const BOB = { username: 'bob', password: 'hunter2-but-longer', email: 'bob@example.com', name: 'Bob' };

/**
 * Starts a server (memory store unless given) with the test users; `issuerPath` e.g. `/t`; `port` one chosen before
 * (freePort), when something must know the issuer first (an upstream's redirect URI).
 */
export async function startServer(
  config: Partial<ConfigInput> = {},
  options: GatehouseOptions & { issuerPath?: string; port?: number } = {},
): Promise<TestServer> {
  const port = options.port ?? (await freePort());
  const origin = `http://localhost:${port}`;
  const issuer = origin + (options.issuerPath ?? '');
  const cfg = parseConfig({
    storage: 'memory',
    logLevel: 'silent',
    passwordHashing: { log2N: 14 },
    users: [ALICE, BOB],
    ...config,
    port,
    host: '127.0.0.1',
    issuer,
  });
  const gatehouse = await createGatehouse(cfg, { logger: options.logger ?? createLogger('silent'), ...options });
  await gatehouse.app.listen({ port, host: '127.0.0.1' });
  return { gatehouse, issuer, origin, close: () => gatehouse.close() };
}

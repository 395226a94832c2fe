/**
 * Availability of the machine's PostgreSQL and Redis for tests. In CI (CI=true) an absent server is an error, never
 * a silent skip; elsewhere the test skips with a visible message.
 */
import { connect } from 'node:net';

const PORTS = { postgres: 5432, redis: 6379 } as const;

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** Resolves true when the service answers; false (with a warning) when not; throws in CI. */
export async function requireService(kind: keyof typeof PORTS): Promise<boolean> {
  if (await reachable(PORTS[kind])) return true;
  const msg = `${kind} is not reachable on 127.0.0.1:${PORTS[kind]}`;
  if (process.env.CI === 'true') throw new Error(`${msg} (required in CI)`);
  console.warn(`SKIPPING: ${msg}`);
  return false;
}

/** Removes what a test stored under `isolation`: its PostgreSQL schema, or its Redis keys (`isolation:*`). */
export async function dropIsolation(kind: keyof typeof PORTS, isolation: string): Promise<void> {
  if (kind === 'postgres') {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/test' });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${isolation} CASCADE`);
    await client.end();
    return;
  }
  const { Redis } = await import('ioredis');
  const redis = new Redis(6379, '127.0.0.1');
  const keys = await redis.keys(`${isolation}:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
}

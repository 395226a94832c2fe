/**
 * The `gatehouse` command: serve | hash-password | key rotate | key list | client list | user add.
 * Argument parsing with node:util parseArgs (no dependency).
 */
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline/promises';
import { ConfigError, loadConfig } from '../config/load.js';
import { systemClock } from '../core/clock.js';
import { generateSigningKey, openPrivateJwk, sealSigningKey } from '../core/keys.js';
import { sealerFromConfig } from '../core/sealing.js';
import { hashPassword } from '../core/password.js';
import { randomId } from '../core/crypto.js';
import { createGatehouse, createLogger } from '../server.js';
import { createStorage } from '../storage/index.js';

const USAGE = `Usage: gatehouse <command>

Commands:
  serve                   start the authorization server (config: GATEHOUSE_CONFIG, PORT, HOST,
                          GATEHOUSE_ISSUER, GATEHOUSE_STORAGE)
  hash-password           read a password from stdin, print an scrypt hash for the config file
                          (at the config's passwordHashing.log2N, GATEHOUSE_CONFIG)
  key rotate [--alg A]    add a new active signing key; the old one stays published until its tokens expire
  key list                list signing keys
  client list             list registered clients
  user add <username>     add or update a user (password from stdin)
`;

async function openStore() {
  const config = loadConfig();
  const logger = createLogger('warn');
  const storage = await createStorage(config.storage, {
    clock: systemClock,
    logger,
    redisKeyPrefix: config.redis.keyPrefix,
    redisSentinel: config.redis.sentinel,
    redisCluster: config.redis.cluster,
    sqlSchema: config.postgres.schema,
    cleanupIntervalMs: 0,
  });
  return { config, storage };
}

async function readSecretFromStdin(prompt: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: false });
  if (process.stdin.isTTY) process.stderr.write(prompt);
  const line = await new Promise<string>((resolve) => rl.once('line', resolve).once('close', () => resolve('')));
  rl.close();
  return line.replace(/\r?\n$/, '');
}

async function serve(): Promise<void> {
  const config = loadConfig();
  const gatehouse = await createGatehouse(config);
  const { app, deps } = gatehouse;
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  deps.logger.info({ issuer: config.issuer, port, host: config.host, storage: deps.storage.kind }, 'gatehouse listening');
  const stop = async (signal: string) => {
    deps.logger.info({ signal }, 'shutting down');
    await gatehouse.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

/** Runs the CLI. */
export async function main(argv: string[]): Promise<number> {
  const [command, sub, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
      case undefined:
        await serve();
        return -1; // keep running
      case 'hash-password': {
        // The configured cost: a hash at another cost is told apart from an unknown username by its timing.
        const { log2N } = loadConfig().passwordHashing;
        const password = await readSecretFromStdin('Password: ');
        if (!password) throw new ConfigError('no password given on stdin');
        process.stdout.write(`${await hashPassword(password, log2N)}\n`);
        return 0;
      }
      case 'key': {
        const { values } = parseArgs({ args: rest, options: { alg: { type: 'string' } } });
        const { config, storage } = await openStore();
        try {
          if (sub === 'rotate') {
            const alg = (values.alg ?? config.signing.alg) as 'ES256' | 'RS256' | 'EdDSA';
            if (!['ES256', 'RS256', 'EdDSA'].includes(alg)) throw new ConfigError(`unsupported --alg ${alg}`);
            const sealer = sealerFromConfig(config);
            // Refuse to add a key the servers could not open (or a clear one beside sealed ones): same encryptionKey.
            for (const existing of await storage.listSigningKeys()) openPrivateJwk(existing, sealer);
            const key = sealSigningKey(await generateSigningKey(alg, systemClock), sealer);
            // Old keys stay in the JWKS until the longest-lived token they signed has expired, plus a margin.
            const overlap = Math.max(config.tokens.accessTokenTtl, config.tokens.idTokenTtl) * 1000 + 5 * 60_000;
            await storage.rotateSigningKey(key, Date.now() + overlap);
            process.stdout.write(`new ${alg} key ${key.kid} is active; replicas pick it up within ${config.signing.keyRefreshSeconds}s\n`);
          } else if (sub === 'list') {
            for (const k of await storage.listSigningKeys()) {
              process.stdout.write(`${k.kid}\t${k.alg}\t${k.status}\t${new Date(k.createdAt).toISOString()}${k.expiresAt ? `\tunpublished after ${new Date(k.expiresAt).toISOString()}` : ''}\n`);
            }
          } else {
            process.stderr.write(USAGE);
            return 2;
          }
        } finally {
          await storage.close();
        }
        return 0;
      }
      case 'client': {
        if (sub !== 'list') {
          process.stderr.write(USAGE);
          return 2;
        }
        const { storage } = await openStore();
        try {
          for (const c of await storage.listClients()) {
            process.stdout.write(`${c.clientId}\t${c.source}\t${c.tokenEndpointAuthMethod}\t${c.clientName ?? ''}\t${c.redirectUris.join(' ')}\n`);
          }
        } finally {
          await storage.close();
        }
        return 0;
      }
      case 'user': {
        if (sub !== 'add' || !rest[0]) {
          process.stderr.write(USAGE);
          return 2;
        }
        const password = await readSecretFromStdin('Password: ');
        if (!password) throw new ConfigError('no password given on stdin');
        const { config, storage } = await openStore();
        try {
          const existing = await storage.getUserByUsername(rest[0]);
          const now = Date.now();
          await storage.saveUser({
            ...(existing ?? { id: randomId(), username: rest[0], createdAt: now }),
            passwordHash: await hashPassword(password, config.passwordHashing.log2N),
            updatedAt: now,
          });
          process.stdout.write(`user ${rest[0]} saved\n`);
        } finally {
          await storage.close();
        }
        return 0;
      }
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return 0;
      default:
        process.stderr.write(`unknown command ${command}\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`gatehouse: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

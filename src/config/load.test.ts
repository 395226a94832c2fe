import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from './load.js';
import { thrown } from '../../test/helpers/thrown.js';

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function configFile(content: unknown): string {
  const path = join(dir, `config-${n++}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const configError = (fn: () => unknown): ConfigError => thrown(fn, ConfigError);

describe('parseConfig defaults', () => {
  const cfg = parseConfig({});

  it('server settings', () => {
    expect(cfg.port).toBe(8080);
    expect(cfg.host).toBe('127.0.0.1');
    expect(cfg.storage).toBe('./data');
    expect(cfg.issuer).toBe('http://localhost:8080');
    expect(cfg.logLevel).toBe('info');
    expect(cfg.strictScopes).toBe(true);
    expect(cfg.introspection).toEqual({ allowedClients: [] });
    expect(cfg.scopes).toEqual([]);
    expect(cfg.resources).toEqual([]);
    expect(cfg.defaultResource).toBeUndefined();
    expect(cfg.users).toEqual([]);
    expect(cfg.clients).toEqual([]);
    expect(cfg.interactionTtl).toBe(600);
    expect(cfg.bodyLimit).toBe(65536);
    expect(cfg.retryAfterSeconds).toBe(5);
  });

  it('nested sections are filled in even when absent', () => {
    expect(cfg.tokens).toEqual({
      accessTokenTtl: 3600,
      refreshTokenTtl: 2_592_000,
      grantTtl: 7_776_000,
      authorizationCodeTtl: 60,
      idTokenTtl: 3600,
      refreshGraceSeconds: 2,
      refreshRequiresOfflineAccess: false,
    });
    expect(cfg.signing).toEqual({ alg: 'ES256', additionalAlgs: ['RS256'], keyRefreshSeconds: 60 });
    expect(cfg.registration).toEqual({
      enabled: true,
      allowClientCredentials: false,
      enforceRegisteredScope: false,
      clientSecretTtl: 0,
      rateLimit: { perIp: 100, total: 0, windowSeconds: 3600 },
      maxClients: 50_000,
      dedupe: { windowSeconds: 86_400, confidentialClients: false },
      cleanup: { unusedDays: 7, idleDays: 90, intervalSeconds: 3600 },
    });
    // Every endpoint limit is off by default: a limit that is off costs no store call.
    const off = { perClient: 0, perIp: 0, windowSeconds: 60 };
    expect(cfg.rateLimits).toEqual({
      token: off,
      authorize: off,
      introspect: off,
      revoke: off,
      deviceAuthorization: off,
    });
    expect(cfg.deviceAuthorization).toEqual({
      enabled: true,
      expiresInSeconds: 600,
      intervalSeconds: 5,
      userCodeAttempts: { perIp: 20, perBrowser: 10, windowSeconds: 600 },
    });
    expect(cfg.http).toEqual({
      requestTimeoutMs: 30_000,
      headersTimeoutMs: 10_000,
      keepAliveTimeoutMs: 5_000,
      connectionTimeoutMs: 60_000,
      maxRequestsPerSocket: 10_000,
    });
    expect(cfg.clientIdMetadataDocuments).toMatchObject({
      enabled: true,
      allowHttp: false,
      allowPrivateAddresses: false,
      maxBytes: 5120,
    });
    expect(cfg.session).toEqual({ ttl: 86400, cookieName: 'gatehouse_session' });
    expect(cfg.consent).toEqual({ ttl: 2_592_000 });
    expect(cfg.pushedAuthorizationRequests).toEqual({ requestUriTtl: 60, required: false });
    expect(cfg.passwordHashing).toEqual({ log2N: 15 });
    expect(cfg.loginRateLimit).toEqual({ maxFailuresPerUsername: 10, maxFailuresPerIp: 50, windowSeconds: 900 });
    expect(cfg.redis).toEqual({ keyPrefix: 'gatehouse:' });
    expect(cfg.memory).toEqual({ maxEntries: 100_000 });
  });

  it('a partial section keeps the other defaults', () => {
    expect(parseConfig({ tokens: { accessTokenTtl: 60 } }).tokens).toMatchObject({
      accessTokenTtl: 60,
      refreshTokenTtl: 2_592_000,
    });
  });

  it('the default issuer follows the port', () => {
    expect(parseConfig({ port: 9000 }).issuer).toBe('http://localhost:9000');
  });
});

describe('parseConfig issuer (RFC 8414 §2)', () => {
  it('keeps an https issuer, with or without a path, exactly as configured', () => {
    expect(parseConfig({ issuer: 'https://auth.example.com' }).issuer).toBe('https://auth.example.com');
    expect(parseConfig({ issuer: 'https://example.com/tenant/a' }).issuer).toBe('https://example.com/tenant/a');
  });

  // RFC 8414 §3.3 compares issuers exactly: silently dropping the slash made every verifier configured with it fail.
  it.each([
    ['https://auth.example.com/', 'https://auth.example.com'],
    ['https://example.com/tenant/a/', 'https://example.com/tenant/a'],
    ['http://localhost:5100//', 'http://localhost:5100'],
  ])('refuses a trailing slash, naming the spelling to use: %s', (issuer, fixed) => {
    expect(configError(() => parseConfig({ issuer })).message).toBe(
      `invalid configuration:\n  issuer (GATEHOUSE_ISSUER): must not end with "/"; use ${fixed} here and in every resource server`,
    );
  });

  it.each([
    'https://auth.example.com/?tenant=a',
    'https://auth.example.com?',
    'https://auth.example.com/#x',
    'https://auth.example.com#',
  ])('refuses a query or fragment: %s', (issuer) => {
    expect(configError(() => parseConfig({ issuer })).message).toBe(
      'invalid configuration:\n  issuer: must not contain a query or fragment',
    );
  });

  it('refuses a non-http(s) scheme', () => {
    expect(configError(() => parseConfig({ issuer: 'ftp://auth.example.com' })).message).toBe(
      'invalid configuration:\n  issuer: must be an https (or, for development, http) URL',
    );
  });

  it('refuses a non-URL', () => {
    expect(configError(() => parseConfig({ issuer: 'auth.example.com' })).message).toMatch(
      /^invalid configuration:\n {2}issuer: /,
    );
  });
});

describe('parseConfig storage (GATEHOUSE_STORAGE)', () => {
  it.each([
    'memory',
    'redis://localhost:6379',
    'rediss://h:6380/1',
    'postgres://u@h/db',
    'postgresql://u@h/db',
    './data',
    'data',
    '/var/lib/gatehouse',
    './odd:name',
    'file:///var/lib/gatehouse',
  ])('accepts %s', (storage) => {
    expect(parseConfig({ storage }).storage).toBe(storage);
  });

  it.each([
    'postgress://postgres@127.0.0.1/gatehouse',
    'redis+tls://h:6379',
    'mysql://u@h/db',
    'sqlite:data.db',
    'memory:',
  ])('refuses an unknown scheme instead of making a directory of it: %s', (storage) => {
    const message = configError(() => parseConfig({ storage })).message;
    expect(message).toMatch(
      /^invalid configuration:\n {2}storage \(GATEHOUSE_STORAGE\): unknown storage scheme "[^"]+:"/,
    );
    for (const form of ['memory', 'redis://', 'rediss://', 'postgres://', 'postgresql://', 'file:'])
      expect(message).toContain(form);
    expect(message).not.toContain('@127.0.0.1'); // only the scheme is echoed, never credentials
  });

  it('refuses a file: URL that names no local path', () => {
    expect(configError(() => parseConfig({ storage: 'file://remote-host/share' })).message).toMatch(
      /^invalid configuration:\n {2}storage \(GATEHOUSE_STORAGE\): not a usable file: URL/,
    );
  });
});

describe('parseConfig errors name the field path', () => {
  it.each([
    [{ tokens: { accessTokenTtl: 0 } }, 'tokens.accessTokenTtl'],
    [{ tokens: { accessTokenTtl: 1.5 } }, 'tokens.accessTokenTtl'],
    [{ tokens: { accessTokenTtl: '3600' } }, 'tokens.accessTokenTtl'],
    [{ tokens: { authorizationCodeTtl: 601 } }, 'tokens.authorizationCodeTtl'],
    [{ tokens: { refreshGraceSeconds: 301 } }, 'tokens.refreshGraceSeconds'],
    [{ port: 70000 }, 'port'],
    [{ port: -1 }, 'port'],
    [{ logLevel: 'verbose' }, 'logLevel'],
    [{ scopes: ['ok', 'bad scope'] }, 'scopes.1'],
    [{ resources: ['not a url'] }, 'resources.0'],
    [{ signing: { alg: 'HS256' } }, 'signing.alg'],
    [{ registration: { initialAccessToken: 'short' } }, 'registration.initialAccessToken'],
    [{ session: { cookieName: 'bad;name' } }, 'session.cookieName'],
    [{ passwordHashing: { log2N: 10 } }, 'passwordHashing.log2N'],
    [{ memory: { maxEntries: 0 } }, 'memory.maxEntries'],
    [{ memory: { maxEntries: 2.5 } }, 'memory.maxEntries'],
    [{ memory: { maxEntries: '250000' } }, 'memory.maxEntries'],
    [{ pushedAuthorizationRequests: { requestUriTtl: 601 } }, 'pushedAuthorizationRequests.requestUriTtl'],
    [{ pushedAuthorizationRequests: { required: 'yes' } }, 'pushedAuthorizationRequests.required'],
    [{ users: [{ username: 'alice' }] }, 'users.0'],
    [{ users: [{ username: 'alice', password: 'x', password_hash: 'scrypt$1' }] }, 'users.0'],
    [{ users: [{ username: 'alice', password_hash: 'bcrypt$x' }] }, 'users.0.password_hash'],
    [
      {
        users: [
          { username: 'a', password: 'x' },
          { username: 'b', password: 'y', email: 'nope' },
        ],
      },
      'users.1.email',
    ],
    [{ clients: [{ client_id: 'c', redirect_uris: 'https://a.example/cb' }] }, 'clients.0.redirect_uris'],
    [{ clients: [{ client_id: 'c', grant_types: ['implicit'] }] }, 'clients.0.grant_types.0'],
    [{ clients: [{ client_id: '' }] }, 'clients.0.client_id'],
    [
      { clients: [{ client_id: 'c', require_pushed_authorization_requests: 'true' }] },
      'clients.0.require_pushed_authorization_requests',
    ],
  ])('%j → %s', (input, path) => {
    const err = configError(() => parseConfig(input));
    expect(err.name).toBe('ConfigError');
    expect(err.message.startsWith('invalid configuration:\n')).toBe(true);
    expect(err.message).toMatch(new RegExp(`^  ${path.replace(/\./g, '\\.')}: `, 'm'));
  });

  it('the users.0 refine message says what is wrong', () => {
    expect(configError(() => parseConfig({ users: [{ username: 'alice' }] })).message).toBe(
      'invalid configuration:\n  users.0: exactly one of password or password_hash is required',
    );
  });

  it('lists every problem, one per line', () => {
    const err = configError(() => parseConfig({ port: 'x', tokens: { idTokenTtl: -1 } }));
    const lines = err.message.split('\n').slice(1);
    expect(lines).toHaveLength(2);
    expect(lines.some((l) => l.startsWith('  port: '))).toBe(true);
    expect(lines.some((l) => l.startsWith('  tokens.idTokenTtl: '))).toBe(true);
  });

  it('refuses an unknown top-level key, naming it', () => {
    const err = configError(() => parseConfig({ prot: 8080 }));
    expect(err.message).toContain('(root)');
    expect(err.message).toContain('prot');
  });

  it('refuses an unknown nested key, naming the section and key', () => {
    const err = configError(() => parseConfig({ tokens: { accesTokenTtl: 60 } }));
    expect(err.message).toMatch(/^ {2}tokens: .*accesTokenTtl/m);
    expect(configError(() => parseConfig({ clients: [{ client_id: 'c', secret: 'x' }] })).message).toMatch(
      /^ {2}clients\.0: .*secret/m,
    );
  });
});

describe('loadConfig(env)', () => {
  it('with no env at all gives the defaults', () => {
    expect(loadConfig({})).toEqual(parseConfig({}));
  });

  it('reads the JSON file named by GATEHOUSE_CONFIG', () => {
    const path = configFile({ port: 9100, storage: 'memory', scopes: ['mcp:tools'], tokens: { accessTokenTtl: 120 } });
    const cfg = loadConfig({ GATEHOUSE_CONFIG: path });
    expect(cfg.port).toBe(9100);
    expect(cfg.storage).toBe('memory');
    expect(cfg.scopes).toEqual(['mcp:tools']);
    expect(cfg.tokens.accessTokenTtl).toBe(120);
    expect(cfg.issuer).toBe('http://localhost:9100');
  });

  it('PORT, HOST, GATEHOUSE_ISSUER, GATEHOUSE_STORAGE, GATEHOUSE_LOG_LEVEL override the file', () => {
    const path = configFile({
      port: 9100,
      host: '0.0.0.0',
      issuer: 'https://file.example',
      storage: './file-data',
      logLevel: 'warn',
    });
    const cfg = loadConfig({
      GATEHOUSE_CONFIG: path,
      PORT: '7000',
      HOST: '::',
      GATEHOUSE_ISSUER: 'https://env.example',
      GATEHOUSE_STORAGE: 'redis://localhost:6379',
      GATEHOUSE_LOG_LEVEL: 'debug',
    });
    expect(cfg).toMatchObject({
      port: 7000,
      host: '::',
      issuer: 'https://env.example',
      storage: 'redis://localhost:6379',
      logLevel: 'debug',
    });
  });

  it('env overrides work without a file', () => {
    const cfg = loadConfig({ PORT: '3000', GATEHOUSE_STORAGE: 'memory' });
    expect(cfg.port).toBe(3000);
    expect(cfg.issuer).toBe('http://localhost:3000');
    expect(cfg.storage).toBe('memory');
  });

  it('GATEHOUSE_ENCRYPTION_KEY is applied when it is 32 bytes of base64, refused (naming encryptionKey) otherwise', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    expect(loadConfig({ GATEHOUSE_ENCRYPTION_KEY: key }).encryptionKey).toBe(key);
    expect(configError(() => loadConfig({ GATEHOUSE_ENCRYPTION_KEY: 'a2V5' })).message).toMatch(
      /^ {2}encryptionKey: /m,
    );
  });

  it('empty env values are ignored', () => {
    const path = configFile({ port: 9100, host: '0.0.0.0' });
    const cfg = loadConfig({ GATEHOUSE_CONFIG: path, PORT: '', HOST: '', GATEHOUSE_ISSUER: '', GATEHOUSE_STORAGE: '' });
    expect(cfg).toMatchObject({ port: 9100, host: '0.0.0.0', storage: './data', issuer: 'http://localhost:9100' });
  });

  it('a non-integer PORT is a ConfigError naming PORT', () => {
    for (const PORT of ['abc', '80.5', '8080x']) {
      expect(configError(() => loadConfig({ PORT })).message).toBe(
        `invalid configuration:\n  PORT: not an integer: ${PORT}`,
      );
    }
  });

  // Regression (was a bug): Number(' ') is 0, so a whitespace-only PORT (e.g. `PORT= ` from a templated .env) passes the integer check and
  // the server silently binds an ephemeral port with issuer http://localhost:0. Hex and exponent forms ('0x1F90',
  // '1e3') are likewise accepted. Parsing with /^\d+$/ before Number() would refuse these.
  it('a whitespace-only PORT is refused rather than becoming port 0', () => {
    expect(() => loadConfig({ PORT: ' ' })).toThrow(ConfigError);
  });

  it('an out-of-range PORT is a ConfigError naming port', () => {
    expect(configError(() => loadConfig({ PORT: '65536' })).message).toMatch(/^ {2}port: /m);
  });

  it('a GATEHOUSE_ISSUER with a query is refused', () => {
    expect(configError(() => loadConfig({ GATEHOUSE_ISSUER: 'https://a.example/?x=1' })).message).toContain(
      'issuer: must not contain a query or fragment',
    );
  });

  it('a bad field in the file stops with the field path', () => {
    const path = configFile({ tokens: { accessTokenTtl: -5 }, clients: [{ client_id: 'c', redirect_uris: 'x' }] });
    const msg = configError(() => loadConfig({ GATEHOUSE_CONFIG: path })).message;
    expect(msg).toMatch(/^ {2}tokens\.accessTokenTtl: /m);
    expect(msg).toMatch(/^ {2}clients\.0\.redirect_uris: /m);
  });

  it('an unknown top-level key in the file is refused', () => {
    const path = configFile({ port: 8080, issuers: 'https://typo.example' });
    expect(configError(() => loadConfig({ GATEHOUSE_CONFIG: path })).message).toContain('issuers');
  });

  it('a missing file is a ConfigError naming the path', () => {
    const missing = join(dir, 'does-not-exist.json');
    expect(configError(() => loadConfig({ GATEHOUSE_CONFIG: missing })).message).toMatch(
      new RegExp(`^cannot read GATEHOUSE_CONFIG ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `),
    );
  });

  it('invalid JSON is a ConfigError', () => {
    const path = configFile('{ "port": 8080, }');
    expect(configError(() => loadConfig({ GATEHOUSE_CONFIG: path })).message).toContain(
      `GATEHOUSE_CONFIG ${path} is not valid JSON`,
    );
  });

  it.each(['[]', 'null', '42', '"text"'])('a JSON file that is not an object (%s) is a ConfigError', (text) => {
    const path = configFile(text);
    expect(configError(() => loadConfig({ GATEHOUSE_CONFIG: path })).message).toBe(
      `GATEHOUSE_CONFIG ${path} must hold a JSON object`,
    );
  });

  it('does not read process.env when an env object is given', () => {
    const saved = process.env.PORT;
    process.env.PORT = '1234';
    try {
      expect(loadConfig({}).port).toBe(8080);
    } finally {
      if (saved === undefined) delete process.env.PORT;
      else process.env.PORT = saved;
    }
  });
});

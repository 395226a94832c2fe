/** The configuration both the old release (generate-fixtures.ts) and the new one (upgrade.test.ts) run with. */

export const PG_SCHEMA_PLACEHOLDER = '__GATEHOUSE_SCHEMA__';
export const REDIS_PREFIX_PLACEHOLDER = '__GATEHOUSE_PREFIX__:';

export const FIXTURE_SCOPE = 'tools:read';
export const FIXTURE_USER = {
  username: 'upgrade-alice',
  password: 'upgrade fixture password 1',
  email: 'alice@example.com',
  name: 'Alice',
};
export const FIXTURE_STATIC_CLIENT = {
  client_id: 'upgrade-machine',
  client_secret: 'upgrade-machine-secret-0123456789abcdef',
  grant_types: ['client_credentials'] as Array<'client_credentials'>,
  token_endpoint_auth_method: 'client_secret_basic' as const,
  scope: FIXTURE_SCOPE,
};

/** Settings valid for the old and the new release alike (the old schema is strict: no new keys here). */
export function fixtureConfig(isolation: { schema?: string; keyPrefix?: string }) {
  return {
    logLevel: 'warn' as const,
    scopes: [FIXTURE_SCOPE],
    passwordHashing: { log2N: 14 },
    users: [FIXTURE_USER],
    clients: [FIXTURE_STATIC_CLIENT],
    ...(isolation.schema ? { postgres: { schema: isolation.schema } } : {}),
    ...(isolation.keyPrefix ? { redis: { keyPrefix: isolation.keyPrefix } } : {}),
  };
}

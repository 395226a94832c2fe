/**
 * Versioned schema migrations for the SQL stores (PostgreSQL and PGlite run the same statements). Applied by
 * {@link migrate} inside one transaction under a per-schema advisory lock, so replicas starting together apply each
 * version exactly once and never see a half-built schema. Never edit a released migration: append a new version.
 */
import type { SqlQueryable } from './driver.js';

/** One schema version: `up` runs with `s` = the quoted schema name. */
export interface Migration {
  version: number;
  name: string;
  up(s: string): string[];
}

/** Every migration, in order. Times are epoch ms in `bigint`; list fields are `text[]`, structured ones `jsonb`. */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    up: (s) => [
      `CREATE TABLE ${s}.clients (
        client_id text PRIMARY KEY,
        client_secret_hash text,
        registration_access_token_hash text,
        redirect_uris text[] NOT NULL,
        grant_types text[] NOT NULL,
        response_types text[] NOT NULL,
        scope text[] NOT NULL,
        token_endpoint_auth_method text NOT NULL,
        application_type text NOT NULL,
        source text NOT NULL,
        -- display and key metadata (client_name, uris, contacts, software_*, jwks, jwks_uri): read as a whole
        metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
        client_secret_expires_at bigint NOT NULL DEFAULT 0,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL
      )`,
      `CREATE TABLE ${s}.users (
        id text PRIMARY KEY,
        username text NOT NULL UNIQUE,
        password_hash text NOT NULL,
        email text,
        email_verified boolean,
        name text,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL
      )`,
      `CREATE TABLE ${s}.signing_keys (
        kid text PRIMARY KEY,
        alg text NOT NULL,
        private_jwk jsonb NOT NULL,
        public_jwk jsonb NOT NULL,
        status text NOT NULL CHECK (status IN ('active', 'retired')),
        created_at bigint NOT NULL,
        expires_at bigint
      )`,
      `CREATE INDEX signing_keys_expires_at_idx ON ${s}.signing_keys (expires_at)`,
      `CREATE TABLE ${s}.secrets (
        name text PRIMARY KEY,
        value text NOT NULL,
        created_at bigint NOT NULL
      )`,
      `CREATE TABLE ${s}.interactions (
        id text PRIMARY KEY,
        client_id text NOT NULL,
        redirect_uri text NOT NULL,
        state text,
        nonce text,
        scope text[] NOT NULL,
        resource text[] NOT NULL,
        code_challenge text NOT NULL,
        code_challenge_method text NOT NULL,
        prompt text[] NOT NULL,
        max_age integer,
        response_mode text NOT NULL,
        user_id text,
        auth_time bigint,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL
      )`,
      `CREATE INDEX interactions_expires_at_idx ON ${s}.interactions (expires_at)`,
      `CREATE TABLE ${s}.sessions (
        id text PRIMARY KEY,
        user_id text NOT NULL,
        auth_time bigint NOT NULL,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL
      )`,
      `CREATE INDEX sessions_expires_at_idx ON ${s}.sessions (expires_at)`,
      `CREATE TABLE ${s}.authorization_codes (
        code_hash text PRIMARY KEY,
        grant_id text NOT NULL,
        client_id text NOT NULL,
        user_id text NOT NULL,
        redirect_uri text NOT NULL,
        scope text[] NOT NULL,
        resource text[] NOT NULL,
        code_challenge text NOT NULL,
        nonce text,
        auth_time bigint NOT NULL,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        -- kept after redemption until expiry so a replay is reported as reuse, not as unknown
        consumed boolean NOT NULL DEFAULT false
      )`,
      `CREATE INDEX authorization_codes_expires_at_idx ON ${s}.authorization_codes (expires_at)`,
      `CREATE INDEX authorization_codes_client_id_idx ON ${s}.authorization_codes (client_id)`,
      `CREATE TABLE ${s}.grants (
        id text PRIMARY KEY,
        client_id text NOT NULL,
        user_id text NOT NULL,
        scope text[] NOT NULL,
        resource text[] NOT NULL,
        auth_time bigint NOT NULL,
        nonce text,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        revoked_at bigint
      )`,
      `CREATE INDEX grants_user_client_idx ON ${s}.grants (user_id, client_id)`,
      `CREATE INDEX grants_client_id_idx ON ${s}.grants (client_id)`,
      `CREATE INDEX grants_expires_at_idx ON ${s}.grants (expires_at)`,
      `CREATE TABLE ${s}.refresh_tokens (
        token_hash text PRIMARY KEY,
        grant_id text NOT NULL REFERENCES ${s}.grants (id) ON DELETE CASCADE,
        client_id text NOT NULL,
        scope text[] NOT NULL,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        rotated_at bigint,
        successor text
      )`,
      `CREATE INDEX refresh_tokens_grant_id_idx ON ${s}.refresh_tokens (grant_id)`,
      `CREATE INDEX refresh_tokens_expires_at_idx ON ${s}.refresh_tokens (expires_at)`,
      // The primary key's leading grant_id column is the index revokeGrant uses.
      `CREATE TABLE ${s}.access_token_refs (
        grant_id text NOT NULL REFERENCES ${s}.grants (id) ON DELETE CASCADE,
        jti text NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (grant_id, jti)
      )`,
      `CREATE INDEX access_token_refs_expires_at_idx ON ${s}.access_token_refs (expires_at)`,
      `CREATE TABLE ${s}.revoked_jtis (
        jti text PRIMARY KEY,
        expires_at bigint NOT NULL
      )`,
      `CREATE INDEX revoked_jtis_expires_at_idx ON ${s}.revoked_jtis (expires_at)`,
      `CREATE TABLE ${s}.consents (
        user_id text NOT NULL,
        client_id text NOT NULL,
        scope text[] NOT NULL,
        resource text[] NOT NULL,
        created_at bigint NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (user_id, client_id)
      )`,
      `CREATE INDEX consents_client_id_idx ON ${s}.consents (client_id)`,
      `CREATE INDEX consents_expires_at_idx ON ${s}.consents (expires_at)`,
    ],
  },
  {
    version: 2,
    name: 'rate-limit counters',
    up: (s) => [
      // key: opaque and already hashed by the caller; expires_at: end of the counter's fixed window
      `CREATE TABLE ${s}.rate_limits (
        key text PRIMARY KEY,
        count bigint NOT NULL,
        expires_at bigint NOT NULL
      )`,
      `CREATE INDEX rate_limits_expires_at_idx ON ${s}.rate_limits (expires_at)`,
    ],
  },
  {
    version: 3,
    name: 'grant tombstones, one-call refresh rotation',
    up: (s) => [
      // A grant id revoked before it was created (a replayed code) is kept as a revoked row with tombstone = true, so
      // createGrant's INSERT ... ON CONFLICT and revokeGrant's upsert serialise on the primary key. getGrant skips it.
      `ALTER TABLE ${s}.grants ADD COLUMN tombstone boolean NOT NULL DEFAULT false`,
      // rotateRefreshToken in one round trip. Every statement of a VOLATILE plpgsql function takes a fresh snapshot,
      // so after waiting for the grant row lock it sees what the previous holder committed, exactly as the separate
      // statements of a transaction would. Lock order as everywhere: grant row, then its tokens.
      `CREATE FUNCTION ${s}.gatehouse_rotate_refresh_token(
        p_old text, p_grant text, p_now bigint, p_clock bigint, p_grace bigint, p_successor text,
        p_hash text, p_client text, p_scope text[], p_created bigint, p_expires bigint,
        p_jti text, p_jti_expires bigint,
        OUT o_status text, OUT o_successor text)
      LANGUAGE plpgsql VOLATILE AS $fn$
      DECLARE
        g record;
        t record;
      BEGIN
        SELECT revoked_at, expires_at INTO g FROM ${s}.grants WHERE id = p_grant FOR UPDATE;
        IF NOT FOUND OR g.revoked_at IS NOT NULL OR g.expires_at <= p_clock THEN
          o_status := 'not_found';
          RETURN;
        END IF;
        UPDATE ${s}.refresh_tokens SET rotated_at = p_now, successor = p_successor
          WHERE token_hash = p_old AND grant_id = p_grant AND rotated_at IS NULL AND expires_at > p_clock;
        IF FOUND THEN
          INSERT INTO ${s}.refresh_tokens (token_hash, grant_id, client_id, scope, created_at, expires_at)
            VALUES (p_hash, p_grant, p_client, p_scope, p_created, p_expires);
          INSERT INTO ${s}.access_token_refs AS a (grant_id, jti, expires_at) VALUES (p_grant, p_jti, p_jti_expires)
            ON CONFLICT (grant_id, jti) DO UPDATE SET expires_at = GREATEST(a.expires_at, EXCLUDED.expires_at);
          o_status := 'rotated';
          RETURN;
        END IF;
        SELECT rotated_at, successor INTO t FROM ${s}.refresh_tokens
          WHERE token_hash = p_old AND grant_id = p_grant AND expires_at > p_clock;
        IF NOT FOUND OR t.rotated_at IS NULL THEN
          o_status := 'not_found';
          RETURN;
        END IF;
        IF p_now - t.rotated_at <= p_grace THEN
          o_status := 'grace';
          o_successor := COALESCE(t.successor, '');
          RETURN;
        END IF;
        -- A token rotated long ago came back: it leaked. Revoke the whole family (RFC 9700 4.14.2), as revokeGrant.
        UPDATE ${s}.grants SET revoked_at = COALESCE(revoked_at, p_now) WHERE id = p_grant;
        DELETE FROM ${s}.refresh_tokens WHERE grant_id = p_grant;
        INSERT INTO ${s}.revoked_jtis AS r (jti, expires_at)
          SELECT jti, max(expires_at) FROM ${s}.access_token_refs
          WHERE grant_id = p_grant AND expires_at > p_clock GROUP BY jti
          ON CONFLICT (jti) DO UPDATE SET expires_at = GREATEST(r.expires_at, EXCLUDED.expires_at);
        o_status := 'reused';
      END
      $fn$`,
    ],
  },
  {
    version: 4,
    name: 'interactions bound to the browser that started them',
    up: (s) => [
      // Hash of the starting browser's nonce cookie; '' (rows from before) matches no browser, so they just expire.
      `ALTER TABLE ${s}.interactions ADD COLUMN browser_binding text NOT NULL DEFAULT ''`,
    ],
  },
  {
    version: 5,
    name: 'replay guard',
    up: (s) => [
      // key: opaque and already hashed by the caller; expires_at: until when a second use is refused
      `CREATE TABLE ${s}.replay_guard (
        key text PRIMARY KEY,
        expires_at bigint NOT NULL
      )`,
      `CREATE INDEX replay_guard_expires_at_idx ON ${s}.replay_guard (expires_at)`,
    ],
  },
  {
    version: 6,
    name: 'redirect_uri sent in the authorization request',
    up: (s) => [
      // RFC 6749 §4.1.3: when the authorization request carried redirect_uri, the token request must repeat it. Rows
      // from before this version (codes live at most 10 minutes) keep the old rule: omission allowed.
      `ALTER TABLE ${s}.interactions ADD COLUMN redirect_uri_sent boolean NOT NULL DEFAULT false`,
      `ALTER TABLE ${s}.authorization_codes ADD COLUMN redirect_uri_sent boolean NOT NULL DEFAULT false`,
    ],
  },
  {
    version: 7,
    name: 'clients without a scope allow-list marked scope_unset',
    up: (s) => [
      // Up to version 6 an empty scope column meant "no allow-list"; since then that is the scope_unset marker and
      // an empty column means "nothing". Every row written before this version meant the former.
      `UPDATE ${s}.clients SET metadata = metadata || '{"scope_unset": true}'::jsonb WHERE cardinality(scope) = 0`,
    ],
  },
  {
    version: 8,
    name: 'expiring records by kind (interactions and sessions moved onto them)',
    up: (s) => [
      // One table for every short-lived record kind (model/record-kinds.ts): a new kind needs no migration.
      `CREATE TABLE ${s}.records (
        kind text NOT NULL,
        id text NOT NULL,
        owner text,
        value jsonb NOT NULL,
        expires_at bigint NOT NULL,
        PRIMARY KEY (kind, id)
      )`,
      `CREATE INDEX records_owner_idx ON ${s}.records (owner, kind) WHERE owner IS NOT NULL`,
      `CREATE INDEX records_expires_at_idx ON ${s}.records (expires_at)`,
      // Live rows move over in the JSON shape the typed ports read (absent optional fields left out), so pending
      // sign-ins and browser sessions survive the upgrade.
      `INSERT INTO ${s}.records (kind, id, owner, value, expires_at)
       SELECT 'interaction', id, 'client:' || client_id, jsonb_strip_nulls(jsonb_build_object(
         'id', id, 'clientId', client_id, 'redirectUri', redirect_uri, 'redirectUriSent', redirect_uri_sent,
         'state', state, 'nonce', nonce, 'scope', to_jsonb(scope), 'resource', to_jsonb(resource),
         'codeChallenge', code_challenge, 'codeChallengeMethod', 'S256', 'prompt', to_jsonb(prompt),
         'maxAge', max_age, 'responseMode', 'query', 'browserBinding', browser_binding, 'userId', user_id,
         'authTime', auth_time, 'createdAt', created_at, 'expiresAt', expires_at)), expires_at
       FROM ${s}.interactions`,
      `INSERT INTO ${s}.records (kind, id, owner, value, expires_at)
       SELECT 'session', id, 'user:' || user_id, jsonb_build_object(
         'id', id, 'userId', user_id, 'authTime', auth_time, 'createdAt', created_at, 'expiresAt', expires_at), expires_at
       FROM ${s}.sessions`,
      `DROP TABLE ${s}.interactions`,
      `DROP TABLE ${s}.sessions`,
    ],
  },
  {
    version: 9,
    name: 'second factors on users, authentication methods on codes and grants',
    up: (s) => [
      // NULL: no requirement set (config mfa.required may still apply). second_factors holds totp, passkeys and
      // recoveryCodes as one JSON object, read and written with the user; '{}' for users from before.
      `ALTER TABLE ${s}.users ADD COLUMN mfa_required boolean`,
      `ALTER TABLE ${s}.users ADD COLUMN second_factors jsonb NOT NULL DEFAULT '{}'::jsonb`,
      // RFC 8176 amr of the sign-in behind the code and the grant; NULL on rows from before: a password (pwd).
      `ALTER TABLE ${s}.authorization_codes ADD COLUMN amr text[]`,
      `ALTER TABLE ${s}.grants ADD COLUMN amr text[]`,
    ],
  },
  {
    version: 10,
    name: 'tenants: a tenant column leading every key, the list of tenants, rotation per tenant',
    up: (s) => [
      // Every row so far belongs to the deployment's own scope, tenant ''. The tenant leads each primary key, unique
      // constraint and lookup index, so every hot query stays one index lookup within its tenant. The expires_at
      // indexes keep no tenant: their only reader is the cleanup, which sweeps every tenant at once.
      // The foreign keys to grants go first: they depend on grants_pkey, and come back on (tenant, grant_id).
      `ALTER TABLE ${s}.refresh_tokens DROP CONSTRAINT refresh_tokens_grant_id_fkey`,
      `ALTER TABLE ${s}.access_token_refs DROP CONSTRAINT access_token_refs_grant_id_fkey`,
      ...(
        [
          ['clients', 'client_id'],
          ['users', 'id'],
          ['signing_keys', 'kid'],
          ['secrets', 'name'],
          ['records', 'kind, id'],
          ['authorization_codes', 'code_hash'],
          ['grants', 'id'],
          ['refresh_tokens', 'token_hash'],
          ['access_token_refs', 'grant_id, jti'],
          ['revoked_jtis', 'jti'],
          ['consents', 'user_id, client_id'],
          ['rate_limits', 'key'],
          ['replay_guard', 'key'],
        ] as const
      ).map(
        ([table, key]) =>
          `ALTER TABLE ${s}.${table} ADD COLUMN tenant text NOT NULL DEFAULT '',
             DROP CONSTRAINT ${table}_pkey, ADD CONSTRAINT ${table}_pkey PRIMARY KEY (tenant, ${key})`,
      ),
      `ALTER TABLE ${s}.users DROP CONSTRAINT users_username_key,
         ADD CONSTRAINT users_username_key UNIQUE (tenant, username)`,
      `ALTER TABLE ${s}.refresh_tokens ADD CONSTRAINT refresh_tokens_grant_id_fkey
         FOREIGN KEY (tenant, grant_id) REFERENCES ${s}.grants (tenant, id) ON DELETE CASCADE`,
      `ALTER TABLE ${s}.access_token_refs ADD CONSTRAINT access_token_refs_grant_id_fkey
         FOREIGN KEY (tenant, grant_id) REFERENCES ${s}.grants (tenant, id) ON DELETE CASCADE`,
      `DROP INDEX ${s}.records_owner_idx`,
      `CREATE INDEX records_owner_idx ON ${s}.records (tenant, owner, kind) WHERE owner IS NOT NULL`,
      `DROP INDEX ${s}.authorization_codes_client_id_idx`,
      `CREATE INDEX authorization_codes_client_id_idx ON ${s}.authorization_codes (tenant, client_id)`,
      `DROP INDEX ${s}.grants_user_client_idx`,
      `CREATE INDEX grants_user_client_idx ON ${s}.grants (tenant, user_id, client_id)`,
      `DROP INDEX ${s}.grants_client_id_idx`,
      `CREATE INDEX grants_client_id_idx ON ${s}.grants (tenant, client_id)`,
      `DROP INDEX ${s}.refresh_tokens_grant_id_idx`,
      `CREATE INDEX refresh_tokens_grant_id_idx ON ${s}.refresh_tokens (tenant, grant_id)`,
      `DROP INDEX ${s}.consents_client_id_idx`,
      `CREATE INDEX consents_client_id_idx ON ${s}.consents (tenant, client_id)`,
      // The deployment's list of tenants (TenantStore): read and written from any scope, so it has no tenant column.
      `CREATE TABLE ${s}.tenants (
        id text PRIMARY KEY,
        settings jsonb NOT NULL DEFAULT '{}'::jsonb,
        source text NOT NULL,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL
      )`,
      // Migration 3's rotation, scoped: every statement matches the tenant. The old signature goes, since its
      // ON CONFLICT targets no longer exist; only this version's code calls the new one.
      `DROP FUNCTION ${s}.gatehouse_rotate_refresh_token(text, text, bigint, bigint, bigint, text, text, text, text[],
        bigint, bigint, text, bigint)`,
      `CREATE FUNCTION ${s}.gatehouse_rotate_refresh_token(
        p_tenant text, p_old text, p_grant text, p_now bigint, p_clock bigint, p_grace bigint, p_successor text,
        p_hash text, p_client text, p_scope text[], p_created bigint, p_expires bigint,
        p_jti text, p_jti_expires bigint,
        OUT o_status text, OUT o_successor text)
      LANGUAGE plpgsql VOLATILE AS $fn$
      DECLARE
        g record;
        t record;
      BEGIN
        SELECT revoked_at, expires_at INTO g FROM ${s}.grants WHERE tenant = p_tenant AND id = p_grant FOR UPDATE;
        IF NOT FOUND OR g.revoked_at IS NOT NULL OR g.expires_at <= p_clock THEN
          o_status := 'not_found';
          RETURN;
        END IF;
        UPDATE ${s}.refresh_tokens SET rotated_at = p_now, successor = p_successor
          WHERE tenant = p_tenant AND token_hash = p_old AND grant_id = p_grant AND rotated_at IS NULL
            AND expires_at > p_clock;
        IF FOUND THEN
          INSERT INTO ${s}.refresh_tokens (tenant, token_hash, grant_id, client_id, scope, created_at, expires_at)
            VALUES (p_tenant, p_hash, p_grant, p_client, p_scope, p_created, p_expires);
          INSERT INTO ${s}.access_token_refs AS a (tenant, grant_id, jti, expires_at)
            VALUES (p_tenant, p_grant, p_jti, p_jti_expires)
            ON CONFLICT (tenant, grant_id, jti) DO UPDATE SET expires_at = GREATEST(a.expires_at, EXCLUDED.expires_at);
          o_status := 'rotated';
          RETURN;
        END IF;
        SELECT rotated_at, successor INTO t FROM ${s}.refresh_tokens
          WHERE tenant = p_tenant AND token_hash = p_old AND grant_id = p_grant AND expires_at > p_clock;
        IF NOT FOUND OR t.rotated_at IS NULL THEN
          o_status := 'not_found';
          RETURN;
        END IF;
        IF p_now - t.rotated_at <= p_grace THEN
          o_status := 'grace';
          o_successor := COALESCE(t.successor, '');
          RETURN;
        END IF;
        -- A token rotated long ago came back: it leaked. Revoke the whole family (RFC 9700 4.14.2), as revokeGrant.
        UPDATE ${s}.grants SET revoked_at = COALESCE(revoked_at, p_now) WHERE tenant = p_tenant AND id = p_grant;
        DELETE FROM ${s}.refresh_tokens WHERE tenant = p_tenant AND grant_id = p_grant;
        INSERT INTO ${s}.revoked_jtis AS r (tenant, jti, expires_at)
          SELECT p_tenant, jti, max(expires_at) FROM ${s}.access_token_refs
          WHERE tenant = p_tenant AND grant_id = p_grant AND expires_at > p_clock GROUP BY jti
          ON CONFLICT (tenant, jti) DO UPDATE SET expires_at = GREATEST(r.expires_at, EXCLUDED.expires_at);
        o_status := 'reused';
      END
      $fn$`,
    ],
  },
  {
    version: 11,
    name: 'access token ids looked up by jti (token exchange finds the grant of a subject token)',
    up: (s) => [`CREATE INDEX access_token_refs_jti_idx ON ${s}.access_token_refs (tenant, jti)`],
  },
  {
    version: 12,
    name: 'listings: grants and consents by user and by client, clients and users paged; grants.last_used_at; users.disabled',
    up: (s) => [
      // Paging indexes (storage/sql/listings.ts). Ids sort in the "C" collation (code points, as in every backend).
      `CREATE INDEX grants_user_list_idx ON ${s}.grants (tenant, user_id, expires_at, id COLLATE "C")`,
      `CREATE INDEX grants_client_list_idx ON ${s}.grants (tenant, client_id, expires_at, id COLLATE "C")`,
      `CREATE INDEX consents_user_list_idx ON ${s}.consents (tenant, user_id, expires_at, client_id COLLATE "C")`,
      `CREATE INDEX consents_client_list_idx ON ${s}.consents (tenant, client_id, expires_at, user_id COLLATE "C")`,
      `CREATE INDEX clients_id_list_idx ON ${s}.clients (tenant, client_id COLLATE "C")`,
      // The lower-cased client name, written by saveClient (JavaScript's toLowerCase); rows from before: SQL lower().
      `ALTER TABLE ${s}.clients ADD COLUMN name_key text`,
      `UPDATE ${s}.clients SET name_key = lower(metadata->>'client_name')`,
      `CREATE INDEX clients_name_list_idx ON ${s}.clients (tenant, name_key COLLATE "C", client_id COLLATE "C")`,
      `CREATE INDEX users_username_list_idx ON ${s}.users (tenant, username COLLATE "C")`,
      // Users disabled by an administrator (UserRecord.disabled).
      `ALTER TABLE ${s}.users ADD COLUMN disabled boolean`,
      // When a grant was last used: its latest refresh-token rotation, written by the rotation function.
      `ALTER TABLE ${s}.grants ADD COLUMN last_used_at bigint`,
      `CREATE OR REPLACE FUNCTION ${s}.gatehouse_rotate_refresh_token(
        p_tenant text, p_old text, p_grant text, p_now bigint, p_clock bigint, p_grace bigint, p_successor text,
        p_hash text, p_client text, p_scope text[], p_created bigint, p_expires bigint,
        p_jti text, p_jti_expires bigint,
        OUT o_status text, OUT o_successor text)
      LANGUAGE plpgsql VOLATILE AS $fn$
      DECLARE
        g record;
        t record;
      BEGIN
        SELECT revoked_at, expires_at INTO g FROM ${s}.grants WHERE tenant = p_tenant AND id = p_grant FOR UPDATE;
        IF NOT FOUND OR g.revoked_at IS NOT NULL OR g.expires_at <= p_clock THEN
          o_status := 'not_found';
          RETURN;
        END IF;
        UPDATE ${s}.refresh_tokens SET rotated_at = p_now, successor = p_successor
          WHERE tenant = p_tenant AND token_hash = p_old AND grant_id = p_grant AND rotated_at IS NULL
            AND expires_at > p_clock;
        IF FOUND THEN
          INSERT INTO ${s}.refresh_tokens (tenant, token_hash, grant_id, client_id, scope, created_at, expires_at)
            VALUES (p_tenant, p_hash, p_grant, p_client, p_scope, p_created, p_expires);
          UPDATE ${s}.grants SET last_used_at = p_now WHERE tenant = p_tenant AND id = p_grant;
          INSERT INTO ${s}.access_token_refs AS a (tenant, grant_id, jti, expires_at)
            VALUES (p_tenant, p_grant, p_jti, p_jti_expires)
            ON CONFLICT (tenant, grant_id, jti) DO UPDATE SET expires_at = GREATEST(a.expires_at, EXCLUDED.expires_at);
          o_status := 'rotated';
          RETURN;
        END IF;
        SELECT rotated_at, successor INTO t FROM ${s}.refresh_tokens
          WHERE tenant = p_tenant AND token_hash = p_old AND grant_id = p_grant AND expires_at > p_clock;
        IF NOT FOUND OR t.rotated_at IS NULL THEN
          o_status := 'not_found';
          RETURN;
        END IF;
        IF p_now - t.rotated_at <= p_grace THEN
          o_status := 'grace';
          o_successor := COALESCE(t.successor, '');
          RETURN;
        END IF;
        -- A token rotated long ago came back: it leaked. Revoke the whole family (RFC 9700 4.14.2), as revokeGrant.
        UPDATE ${s}.grants SET revoked_at = COALESCE(revoked_at, p_now) WHERE tenant = p_tenant AND id = p_grant;
        DELETE FROM ${s}.refresh_tokens WHERE tenant = p_tenant AND grant_id = p_grant;
        INSERT INTO ${s}.revoked_jtis AS r (tenant, jti, expires_at)
          SELECT p_tenant, jti, max(expires_at) FROM ${s}.access_token_refs
          WHERE tenant = p_tenant AND grant_id = p_grant AND expires_at > p_clock GROUP BY jti
          ON CONFLICT (tenant, jti) DO UPDATE SET expires_at = GREATEST(r.expires_at, EXCLUDED.expires_at);
        o_status := 'reused';
      END
      $fn$`,
    ],
  },
  {
    version: 13,
    name: "DPoP: the key thumbprint a code (dpop_jkt) and a public client's grant are bound to (RFC 9449)",
    up: (s) => [
      // NULL: not bound. A code's from the authorization request's dpop_jkt (§10); a grant's from the proof of the
      // token request that began it, for public clients only (§5): every refresh must prove the same key.
      `ALTER TABLE ${s}.authorization_codes ADD COLUMN dpop_jkt text`,
      `ALTER TABLE ${s}.grants ADD COLUMN dpop_jkt text`,
    ],
  },
  {
    version: 14,
    name: 'revokeGrant in one call: the function gatehouse_revoke_grant',
    up: (s) => [
      // The statements of the former revokeGrant transaction, in one call (one round trip instead of BEGIN, two
      // statements and COMMIT). Each statement of a VOLATILE plpgsql function takes a fresh snapshot, as the
      // transaction's did under READ COMMITTED: once the upsert holds the grant row's lock, the DELETE and the copy of
      // the access-token ids see every token a rotation committed before it (one statement with CTEs would not: its
      // one snapshot predates the lock wait).
      `CREATE FUNCTION ${s}.gatehouse_revoke_grant(
        p_tenant text, p_grant text, p_now bigint, p_clock bigint, p_tombstone_expires bigint)
      RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$
      DECLARE
        v_tombstone boolean;
      BEGIN
        -- COALESCE keeps the first revocation time (idempotent); no grant (yet) leaves a tombstone, which a racing
        -- createGrant of the id queues behind on the primary key.
        INSERT INTO ${s}.grants AS g (tenant, id, client_id, user_id, scope, resource, auth_time, created_at,
            expires_at, revoked_at, tombstone)
          VALUES (p_tenant, p_grant, '', '', '{}', '{}', 0, p_clock, p_tombstone_expires, p_now, true)
          ON CONFLICT (tenant, id) DO UPDATE SET revoked_at = COALESCE(g.revoked_at, EXCLUDED.revoked_at),
            expires_at = CASE WHEN g.tombstone THEN GREATEST(g.expires_at, EXCLUDED.expires_at) ELSE g.expires_at END
          RETURNING tombstone INTO v_tombstone;
        IF v_tombstone IS DISTINCT FROM false THEN
          RETURN false;
        END IF;
        DELETE FROM ${s}.refresh_tokens WHERE tenant = p_tenant AND grant_id = p_grant;
        INSERT INTO ${s}.revoked_jtis AS r (tenant, jti, expires_at)
          SELECT p_tenant, jti, max(expires_at) FROM ${s}.access_token_refs
          WHERE tenant = p_tenant AND grant_id = p_grant AND expires_at > p_clock GROUP BY jti
          ON CONFLICT (tenant, jti) DO UPDATE SET expires_at = GREATEST(r.expires_at, EXCLUDED.expires_at);
        RETURN true;
      END
      $fn$`,
    ],
  },
];

/** Double-quotes an SQL identifier (schema names come from configuration). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Advisory-lock key text for a purpose and schema; hashed server-side with `hashtext`. */
export function lockKey(purpose: 'migrate' | 'cleanup' | 'keys', schema: string, tenant = ''): string {
  // The default scope keeps the key it always had; a tenant's key-set changes do not wait for another tenant's.
  return tenant === '' ? `gatehouse.${purpose}.${schema}` : `gatehouse.${purpose}.${schema}/${tenant}`;
}

/**
 * Creates the schema if missing and applies every pending migration in one transaction, holding a transaction-scoped
 * advisory lock so concurrent replicas wait instead of racing on DDL. Returns the versions applied now.
 */
export async function migrate(
  tx: SqlQueryable,
  schema: string,
  list: readonly Migration[] = migrations,
): Promise<number[]> {
  const s = quoteIdent(schema);
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [lockKey('migrate', schema)]);
  // Look first: CREATE SCHEMA needs the database CREATE privilege even when the schema exists, which a
  // least-privileged role given an existing schema lacks. Under the lock, so two replicas cannot both create it.
  const existing = await tx.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
  if (existing.rows.length === 0) await tx.query(`CREATE SCHEMA ${s}`);
  await tx.query(
    `CREATE TABLE IF NOT EXISTS ${s}.gatehouse_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`,
  );
  const { rows } = await tx.query<{ version: number }>(`SELECT version FROM ${s}.gatehouse_migrations`);
  const applied = new Set(rows.map((r) => Number(r.version)));
  const done: number[] = [];
  for (const m of [...list].sort((a, b) => a.version - b.version)) {
    if (applied.has(m.version)) continue;
    for (const statement of m.up(s)) await tx.query(statement);
    await tx.query(`INSERT INTO ${s}.gatehouse_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
    done.push(m.version);
  }
  return done;
}

/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, MCP 2025-11-25): a client_id that is
 * an https URL names a JSON document with the client's metadata. Fetched SSRF-safely (clients/ssrf.ts), validated
 * (its client_id must equal the URL; client_name and redirect_uris present; no shared secrets), cached per its HTTP
 * caching headers within bounds.
 */
import { InvalidClient, InvalidClientMetadata, OAuthError } from '../model/errors.js';
import { validateClientMetadata, parseRegistrationRequest, type GrantClientRules } from '../core/client-metadata.js';
import { isLoopback } from '../core/redirect-uri.js';
import type { ClientResolver } from '../core/client-auth.js';
import type { Clock } from '../core/clock.js';
import { ExpiringCache } from '../core/expiring-cache.js';
import type { Config } from '../config/schema.js';
import type { ClientRecord } from '../model/records.js';
import { OutboundFetchError, safeGet, type OutboundPolicy } from './ssrf.js';

type CimdConfig = Config['clientIdMetadataDocuments'] & { ca?: string };

/** True when `clientId` is meant as a metadata document URL (https, or http when allowed, with a path). */
export function isMetadataDocumentUrl(clientId: string, allowHttp: boolean): boolean {
  return clientId.startsWith('https://') || (allowHttp && clientId.startsWith('http://'));
}

/** The draft's URL rules: a path component, no fragment, no dot segments, no credentials. */
function checkClientIdUrl(clientId: string): URL {
  let url: URL;
  try {
    url = new URL(clientId);
  } catch {
    throw new InvalidClient('client_id is not a valid URL');
  }
  if (clientId.includes('#') || url.username || url.password)
    throw new InvalidClient('client_id URL must not contain a fragment or credentials');
  if (url.pathname === '/' || url.pathname === '') throw new InvalidClient('client_id URL must contain a path');
  if (/\/\.\.?(\/|$)/.test(clientId.split('?')[0]!.slice(url.origin.length)))
    throw new InvalidClient('client_id URL must not contain dot segments');
  if (url.href !== clientId) throw new InvalidClient('client_id URL must be in normalized form');
  return url;
}

/** Resolves metadata-document clients; other client_ids go to the store. */
export class MetadataDocumentResolver implements ClientResolver {
  /** Validated documents, least recently used dropped first when full. */
  private readonly cache: ExpiringCache<ClientRecord>;
  private inflight = new Map<string, Promise<ClientRecord>>();
  private readonly policy: OutboundPolicy;

  constructor(
    private readonly store: ClientResolver,
    private readonly config: CimdConfig,
    private readonly clock: Clock,
    private readonly scopesSupported: readonly string[],
    /** The server's grants with their client rules (src/grants `clientRulesOf`). */
    private readonly grants: readonly GrantClientRules[],
  ) {
    this.policy = config;
    this.cache = new ExpiringCache(config.cacheMaxEntries, clock);
  }

  forget(clientId: string): void {
    this.cache.delete(clientId);
    this.store.forget?.(clientId);
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    if (!this.config.enabled || !isMetadataDocumentUrl(clientId, this.config.allowHttp))
      return this.store.getClient(clientId);
    const cached = this.cache.get(clientId);
    if (cached) return cached;
    let pending = this.inflight.get(clientId);
    if (!pending) {
      pending = this.fetchClient(clientId).finally(() => this.inflight.delete(clientId));
      this.inflight.set(clientId, pending);
    }
    return pending;
  }

  private async fetchClient(clientId: string): Promise<ClientRecord> {
    const url = checkClientIdUrl(clientId);
    let res;
    try {
      res = await safeGet(url, this.policy);
    } catch (err) {
      if (err instanceof OutboundFetchError)
        throw new InvalidClient(`client metadata document refused: ${err.message}`, { cause: err });
      throw err;
    }
    if (res.status !== 200) throw new InvalidClient(`client metadata document answered HTTP ${res.status}`);
    const type = String(res.headers['content-type'] ?? '');
    if (!/^application\/(json|[a-z0-9.+-]*\+json)\b/i.test(type)) {
      throw new InvalidClient('client metadata document must be served as application/json');
    }
    let doc: unknown;
    try {
      doc = JSON.parse(res.body);
    } catch {
      throw new InvalidClient('client metadata document is not valid JSON');
    }
    const client = this.validate(clientId, doc);
    const ttl = cacheSeconds(res.headers['cache-control'], res.headers['expires'], this.config);
    if (ttl > 0) this.cache.set(clientId, client, this.clock.now() + ttl * 1000);
    return client;
  }

  private validate(clientId: string, doc: unknown): ClientRecord {
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
      throw new InvalidClient('client metadata document must be a JSON object');
    const d = doc as Record<string, unknown>;
    if (d.client_id !== clientId) throw new InvalidClient('client metadata document client_id does not match its URL');
    if ('client_secret' in d || 'client_secret_expires_at' in d) {
      throw new InvalidClient('client metadata document must not contain a client secret');
    }
    const method = d.token_endpoint_auth_method ?? 'none';
    if (method !== 'none' && method !== 'private_key_jwt') {
      throw new InvalidClient(
        'client metadata document clients must use token_endpoint_auth_method none or private_key_jwt',
      );
    }
    if (method === 'private_key_jwt' && !(isObject(d.jwks) || typeof d.jwks_uri === 'string')) {
      throw new InvalidClient('private_key_jwt requires jwks or jwks_uri');
    }
    const barred = this.grants.find(
      (g) => g.metadataDocumentClients === false && Array.isArray(d.grant_types) && d.grant_types.includes(g.grantType),
    );
    if (barred) throw new InvalidClient(`client metadata document clients cannot use ${barred.grantType}`);
    // MCP 2026-07-28 client registration: a document must carry client_id, client_name and redirect_uris.
    if (typeof d.client_name !== 'string' || d.client_name.trim() === '') {
      throw new InvalidClient('client metadata document must include a client_name');
    }
    if (!Array.isArray(d.redirect_uris) || d.redirect_uris.length === 0) {
      throw new InvalidClient('client metadata document must include redirect_uris');
    }
    let metadata;
    try {
      metadata = validateClientMetadata(
        parseRegistrationRequest({ ...d, token_endpoint_auth_method: 'none' }),
        this.scopesSupported,
        false,
        this.grants,
      );
    } catch (err) {
      if (err instanceof InvalidClientMetadata || err instanceof OAuthError) {
        throw new InvalidClient(`client metadata document is invalid: ${err.description}`);
      }
      throw err;
    }
    const now = this.clock.now();
    return {
      ...metadata,
      // Refresh tokens are what MCP clients need; the document may narrow but the draft's default is the code grant.
      grantTypes: metadata.grantTypes,
      tokenEndpointAuthMethod: method,
      clientId,
      jwks: isObject(d.jwks) ? (d.jwks as { keys: Record<string, unknown>[] }) : undefined,
      jwksUri: typeof d.jwks_uri === 'string' ? d.jwks_uri : undefined,
      source: 'metadata_document',
      createdAt: now,
      updatedAt: now,
      clientSecretExpiresAt: 0,
    };
  }
}

function isObject(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Seconds to cache per Cache-Control / Expires (RFC 9111), bounded by config; 0 = do not cache. */
export function cacheSeconds(
  cacheControl: string | undefined,
  expires: string | undefined,
  bounds: Pick<CimdConfig, 'minCacheSeconds' | 'maxCacheSeconds'>,
): number {
  const cc = (cacheControl ?? '').toLowerCase();
  if (/\b(no-store|no-cache|private)\b/.test(cc)) return 0;
  const maxAge = /\bmax-age=(\d+)/.exec(cc);
  let seconds: number;
  if (maxAge) seconds = Number(maxAge[1]);
  else if (expires) seconds = Math.floor((Date.parse(expires) - Date.now()) / 1000);
  else seconds = 300;
  if (!Number.isFinite(seconds) || seconds <= 0) return 0;
  return Math.min(Math.max(seconds, bounds.minCacheSeconds), bounds.maxCacheSeconds);
}

/** Consent-page warnings for a client: a metadata-document client whose redirect URIs are all on localhost. */
export function metadataDocumentWarnings(client: ClientRecord): string[] {
  if (client.source !== 'metadata_document') return [];
  const warnings = [`This application is identified by ${new URL(client.clientId).host}.`];
  const allLocal =
    client.redirectUris.length > 0 &&
    client.redirectUris.every((uri) => {
      try {
        return isLoopback(new URL(uri));
      } catch {
        return false;
      }
    });
  if (allLocal) {
    warnings.push(
      'It only returns to addresses on this computer (localhost), so any program on this computer could present itself under this name. Continue only if you started this sign-in yourself.',
    );
  }
  return warnings;
}

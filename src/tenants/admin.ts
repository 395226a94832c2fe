/**
 * Creating, changing and deleting tenants at run time: what the admin API (http/routes/admin.ts) and the CLI
 * (`gatehouse tenant ...`) both do. Settings are checked as the config file's are (config/tenants.ts) before anything
 * is saved. Settings kept in the store hold no usable secret: a user needs a password_hash, not a password; a static
 * confidential client is refused (register it through the tenant's own /register, whose secret is stored hashed).
 * Tenants of the config file are changed there, not here.
 */
import type { Clock } from '../core/clock.js';
import type { Config } from '../config/schema.js';
import { tenantConfig, tenantIssuer } from '../config/tenants.js';
import { ConfigError } from '../model/errors.js';
import type { Storage } from '../model/ports.js';
import type { TenantRecord } from '../model/records.js';
import { isTenantId } from '../model/tenants.js';

/** A refused tenant operation, with the HTTP status the admin API answers. */
export class TenantAdminError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    readonly code: 'invalid_tenant' | 'not_found' | 'conflict',
    message: string,
  ) {
    super(message);
    this.name = 'TenantAdminError';
  }
}

export interface TenantAdminOptions {
  deployment: Config;
  /** The deployment's store (tenant records live in its default scope; purging reaches every scope). */
  storage: Pick<Storage, 'getTenant' | 'listTenants' | 'saveTenant' | 'deleteTenant' | 'purgeTenant'>;
  clock: Clock;
  /** Tenant ids the deployment's own endpoints use (`token`, `authorize`, ...). */
  reserved: ReadonlySet<string>;
  /** Called after a change, so this process drops what it cached of the tenant at once. */
  changed?: (id: string) => void;
  /**
   * Runs `purge` again once every replica has dropped the tenant (after tenantRefreshSeconds): a request a replica
   * served meanwhile may have written to the tenant's scope. Default: a timer in this process.
   */
  later?: (purge: () => Promise<void>, delayMs: number) => void;
}

/** A tenant as the admin API shows it. */
export interface TenantView {
  id: string;
  issuer: string;
  source: TenantRecord['source'];
  settings: Record<string, unknown>;
  created_at: string;
  updated_at: string;
}

export class TenantAdmin {
  constructor(private readonly options: TenantAdminOptions) {}

  view(record: TenantRecord): TenantView {
    return {
      id: record.id,
      issuer: tenantIssuer(this.options.deployment.issuer, record.id),
      source: record.source,
      settings: record.settings,
      created_at: new Date(record.createdAt).toISOString(),
      updated_at: new Date(record.updatedAt).toISOString(),
    };
  }

  async list(): Promise<TenantRecord[]> {
    return (await this.options.storage.listTenants()).sort((a, b) => a.id.localeCompare(b.id));
  }

  async get(id: string): Promise<TenantRecord> {
    const record = isTenantId(id) ? await this.options.storage.getTenant(id) : undefined;
    if (!record) throw new TenantAdminError(404, 'not_found', `no tenant ${JSON.stringify(id)}`);
    return record;
  }

  async create(id: unknown, settings: unknown): Promise<TenantRecord> {
    const checkedId = this.checkId(id);
    const checked = this.checkSettings(checkedId, settings);
    if (await this.options.storage.getTenant(checkedId)) {
      throw new TenantAdminError(409, 'conflict', `tenant ${checkedId} exists already`);
    }
    const now = this.options.clock.now();
    const record: TenantRecord = { id: checkedId, settings: checked, source: 'admin', createdAt: now, updatedAt: now };
    await this.options.storage.saveTenant(record);
    this.options.changed?.(checkedId);
    return record;
  }

  /** Replaces the tenant's settings. */
  async update(id: string, settings: unknown): Promise<TenantRecord> {
    const existing = await this.get(id);
    this.refuseConfigTenant(existing, 'changed');
    const checked = this.checkSettings(id, settings);
    // Strictly later, so every replica sees a new updatedAt even within one millisecond.
    const updatedAt = Math.max(this.options.clock.now(), existing.updatedAt + 1);
    const record: TenantRecord = { ...existing, settings: checked, updatedAt };
    await this.options.storage.saveTenant(record);
    this.options.changed?.(id);
    return record;
  }

  /**
   * Deletes the tenant and everything it owns: its record first (so no replica loads it again), then its data;
   * again after tenantRefreshSeconds. Returns how many items were removed now.
   */
  async remove(id: string): Promise<number> {
    const existing = await this.get(id);
    this.refuseConfigTenant(existing, 'deleted');
    await this.options.storage.deleteTenant(id);
    this.options.changed?.(id);
    const removed = await this.options.storage.purgeTenant(id);
    const delayMs = (this.options.deployment.tenantRefreshSeconds + 1) * 1000;
    const purge = async () => {
      // Unless it was created again meanwhile: then what is there is the new tenant's.
      if (!(await this.options.storage.getTenant(id))) await this.options.storage.purgeTenant(id);
    };
    const later =
      this.options.later ??
      ((run: () => Promise<void>, ms: number) => setTimeout(() => void run().catch(() => undefined), ms).unref());
    later(purge, delayMs);
    return removed;
  }

  private checkId(id: unknown): string {
    if (typeof id !== 'string' || !isTenantId(id)) {
      throw new TenantAdminError(
        400,
        'invalid_tenant',
        'id: 1 to 63 lowercase letters, digits and hyphens, not starting or ending with a hyphen',
      );
    }
    if (this.options.reserved.has(id)) {
      throw new TenantAdminError(400, 'invalid_tenant', `id: "${id}" is a path of the deployment's own endpoints`);
    }
    return id;
  }

  private checkSettings(id: string, settings: unknown): Record<string, unknown> {
    if (settings === undefined) return {};
    if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
      throw new TenantAdminError(400, 'invalid_tenant', 'settings: must be a JSON object');
    }
    const s = settings as Record<string, unknown>;
    const secret = storedSecretIn(s);
    if (secret) throw new TenantAdminError(400, 'invalid_tenant', `settings.${secret}`);
    try {
      tenantConfig(this.options.deployment, id, s);
    } catch (err) {
      if (err instanceof ConfigError) throw new TenantAdminError(400, 'invalid_tenant', err.message);
      throw err;
    }
    return s;
  }

  private refuseConfigTenant(record: TenantRecord, what: string): void {
    if (record.source === 'config') {
      throw new TenantAdminError(
        409,
        'conflict',
        `tenant ${record.id} is declared in the config file: it is ${what} there, not through the admin API`,
      );
    }
  }
}

/** The first setting that would keep a usable secret in the store, with why; undefined when there is none. */
function storedSecretIn(settings: Record<string, unknown>): string | undefined {
  const list = (key: string) => (Array.isArray(settings[key]) ? (settings[key] as unknown[]) : []);
  const users = list('users');
  for (const [i, user] of users.entries()) {
    if (user && typeof user === 'object' && 'password' in user) {
      return `users[${i}].password: the store keeps no plaintext password; give password_hash (gatehouse hash-password)`;
    }
  }
  for (const [i, client] of list('clients').entries()) {
    if (client && typeof client === 'object' && 'client_secret' in client) {
      return `clients[${i}].client_secret: the store keeps no plaintext secret; register confidential clients at the tenant's /register, or declare the tenant in the config file`;
    }
  }
  for (const [i, upstream] of list('upstreams').entries()) {
    if (upstream && typeof upstream === 'object' && 'clientSecret' in upstream) {
      return `upstreams[${i}].clientSecret: the store keeps no plaintext secret; give clientSecretEnv or clientSecretFile (read by every replica)`;
    }
  }
  const registration = settings.registration;
  if (registration && typeof registration === 'object' && 'initialAccessToken' in registration) {
    return 'registration.initialAccessToken: the store keeps no plaintext token; declare the tenant in the config file to set one';
  }
  return undefined;
}

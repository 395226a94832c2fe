/** Loads the configuration: file named by GATEHOUSE_CONFIG, then env overrides, validated once at start. */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { embeddedDirectory, storageKind } from '../storage/index.js';
import { configSchema, type Config, type ConfigInput } from './schema.js';
import { ConfigError } from '../model/errors.js';

export { ConfigError } from '../model/errors.js';

/** Formats zod issues as `path: message` lines. */
function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `  ${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('\n');
}

/** Validates a config object (file content merged with overrides) and fills in derived defaults. */
export function parseConfig(input: unknown): Config {
  const result = configSchema.safeParse(input);
  if (!result.success) throw new ConfigError(`invalid configuration:\n${formatIssues(result.error)}`);
  const cfg = result.data;
  const issuer = cfg.issuer ?? `http://localhost:${cfg.port}`;
  const url = new URL(issuer);
  // RFC 8414 §2: the issuer has no query or fragment. Plain http is allowed (local development, TLS ended by a
  // proxy in front) and warned about at start for non-loopback hosts.
  if (url.search || url.hash || issuer.includes('?') || issuer.includes('#')) {
    throw new ConfigError('invalid configuration:\n  issuer: must not contain a query or fragment');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError('invalid configuration:\n  issuer: must be an https (or, for development, http) URL');
  }
  // RFC 8414 §3.3: resource servers compare the metadata issuer with their configured one exactly, so there is one
  // spelling, kept exactly as configured; a trailing slash is refused rather than silently dropped (a verifier
  // configured with the slash would then fail every call).
  if (issuer.endsWith('/')) {
    throw new ConfigError(
      `invalid configuration:\n  issuer (GATEHOUSE_ISSUER): must not end with "/"; use ${issuer.replace(/\/+$/, '')} here and in every resource server`,
    );
  }
  try {
    if (storageKind(cfg.storage) === 'embedded') embeddedDirectory(cfg.storage);
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  storage (GATEHOUSE_STORAGE): ${(err as Error).message}`);
  }
  return { ...cfg, issuer };
}

/**
 * Reads GATEHOUSE_CONFIG (JSON) and applies PORT, HOST, GATEHOUSE_ISSUER, GATEHOUSE_STORAGE, GATEHOUSE_LOG_LEVEL,
 * GATEHOUSE_ENCRYPTION_KEY(S_PREVIOUS), GATEHOUSE_ADMIN_TOKEN.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  let file: ConfigInput = {};
  const path = env.GATEHOUSE_CONFIG;
  if (path) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read GATEHOUSE_CONFIG ${path}: ${(err as Error).message}`);
    }
    try {
      file = JSON.parse(text) as ConfigInput;
    } catch (err) {
      throw new ConfigError(`GATEHOUSE_CONFIG ${path} is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof file !== 'object' || file === null || Array.isArray(file)) {
      throw new ConfigError(`GATEHOUSE_CONFIG ${path} must hold a JSON object`);
    }
  }
  const merged: Record<string, unknown> = { ...file };
  if (env.PORT !== undefined && env.PORT !== '') {
    const port = /^\d+$/.test(env.PORT.trim()) ? Number(env.PORT.trim()) : NaN;
    if (!Number.isInteger(port)) throw new ConfigError(`invalid configuration:\n  PORT: not an integer: ${env.PORT}`);
    merged.port = port;
  }
  if (env.HOST) merged.host = env.HOST;
  if (env.GATEHOUSE_ISSUER) merged.issuer = env.GATEHOUSE_ISSUER;
  if (env.GATEHOUSE_STORAGE) merged.storage = env.GATEHOUSE_STORAGE;
  if (env.GATEHOUSE_LOG_LEVEL) merged.logLevel = env.GATEHOUSE_LOG_LEVEL;
  if (env.GATEHOUSE_ENCRYPTION_KEY) merged.encryptionKey = env.GATEHOUSE_ENCRYPTION_KEY;
  if (env.GATEHOUSE_ADMIN_TOKEN) merged.adminToken = env.GATEHOUSE_ADMIN_TOKEN;
  if (env.GATEHOUSE_ENCRYPTION_KEYS_PREVIOUS) {
    merged.encryptionKeysPrevious = env.GATEHOUSE_ENCRYPTION_KEYS_PREVIOUS.split(',')
      .map((k) => k.trim())
      .filter(Boolean);
  }
  return parseConfig(merged);
}

/** Gatehouse as a library: build a server from a config, or use its parts. */
export { createGatehouse, createLogger, STANDARD_SCOPES, type Gatehouse, type GatehouseOptions } from './server.js';
export { loadConfig, parseConfig, ConfigError } from './config/load.js';
export type { Config, ConfigInput } from './config/schema.js';
export { createStorage, storageKind, type StorageKind } from './storage/index.js';
export type * from './model/records.js';
export type * from './model/ports.js';
export { ManualClock, systemClock, type Clock } from './core/clock.js';
export { OAuthError } from './model/errors.js';
export { hashPassword, verifyPassword } from './core/password.js';

/** Picks a Storage backend from the GATEHOUSE_STORAGE value (DESIGN.md contract). */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Storage } from '../model/ports.js';
import type { StoreOptions } from './options.js';

export type { Storage } from '../model/ports.js';
export type { StoreOptions, StoreLogger } from './options.js';
export { StorageLockedError } from './errors.js';

/** Which backend a storage URL selects. */
export type StorageKind = 'memory' | 'redis' | 'postgres' | 'embedded';

/** The forms a GATEHOUSE_STORAGE value may take, for messages. */
export const STORAGE_FORMS = 'memory, redis://, rediss://, postgres://, postgresql://, file: or a directory path';

/** A GATEHOUSE_STORAGE value that names no backend (e.g. a mistyped scheme). */
export class UnknownStorageError extends TypeError {
  constructor(url: string) {
    const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? url;
    super(
      `unknown storage scheme "${scheme}" (accepted: ${STORAGE_FORMS}; a directory whose name contains ":" is written ./name)`,
    );
    this.name = 'UnknownStorageError';
  }
}

/**
 * Classifies a GATEHOUSE_STORAGE value: `memory`, `redis(s)://`, `postgres(ql)://`, a `file:` URL or a plain path
 * (embedded). Anything else that starts like a URL scheme is refused: a mistyped `postgress://` must not silently
 * become a private embedded store in a directory of that name.
 */
export function storageKind(url: string): StorageKind {
  if (url === 'memory') return 'memory';
  if (/^rediss?:\/\//i.test(url)) return 'redis';
  if (/^postgres(ql)?:\/\//i.test(url)) return 'postgres';
  // `memory://` is the embedded store kept in memory (PGlite's own notation; tests).
  if (/^(file:|memory:\/\/)/i.test(url) || !/^[a-z][a-z0-9+.-]*:/i.test(url)) return 'embedded';
  throw new UnknownStorageError(url);
}

/** The absolute directory of an embedded store value (a `file:` URL or a path, relative to the working directory). */
export function embeddedDirectory(url: string): string {
  if (/^memory:\/\//i.test(url)) return url;
  if (/^file:/i.test(url)) {
    try {
      return fileURLToPath(url);
    } catch (err) {
      throw new TypeError(
        `not a usable file: URL (${(err as Error).message}); write file:///absolute/path or a plain path`,
        {
          cause: err,
        },
      );
    }
  }
  return resolve(url);
}

/** A GATEHOUSE_STORAGE value for logs: the backend and where it is, never credentials. */
export function describeStorage(url: string): string {
  const kind = storageKind(url);
  if (kind === 'memory') return 'memory';
  if (kind === 'embedded') return `embedded (${embeddedDirectory(url)})`;
  try {
    const parsed = new URL(url);
    return `${kind} (${parsed.host}${kind === 'postgres' ? parsed.pathname : ''})`;
  } catch {
    return kind;
  }
}

/** Creates (and initialises) the store a GATEHOUSE_STORAGE value names. Backends load lazily. */
export async function createStorage(url: string, options: StoreOptions): Promise<Storage> {
  let storage: Storage;
  switch (storageKind(url)) {
    case 'memory': {
      const { MemoryStorage } = await import('./memory/memory-storage.js');
      storage = new MemoryStorage(options);
      break;
    }
    case 'redis': {
      const { createRedisStorage } = await import('./redis/redis-storage.js');
      storage = createRedisStorage(url, options);
      break;
    }
    case 'postgres': {
      const { createPostgresStorage } = await import('./sql/postgres.js');
      storage = createPostgresStorage(url, options);
      break;
    }
    case 'embedded': {
      const { createEmbeddedStorage } = await import('./sql/embedded.js');
      storage = createEmbeddedStorage(embeddedDirectory(url), options);
      break;
    }
  }
  await storage.init();
  return storage;
}

/** Picks a Storage backend from the GATEHOUSE_STORAGE value (DESIGN.md contract). */
import type { Storage } from './types.js';
import type { StoreOptions } from './options.js';

export type { Storage } from './types.js';
export type { StoreOptions, StoreLogger } from './options.js';

/** Which backend a storage URL selects. */
export type StorageKind = 'memory' | 'redis' | 'postgres' | 'embedded';

/** Classifies a GATEHOUSE_STORAGE value: `memory`, `redis(s)://`, `postgres(ql)://`, else a directory path. */
export function storageKind(url: string): StorageKind {
  if (url === 'memory') return 'memory';
  if (/^rediss?:\/\//i.test(url)) return 'redis';
  if (/^postgres(ql)?:\/\//i.test(url)) return 'postgres';
  return 'embedded';
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
      storage = createEmbeddedStorage(url, options);
      break;
    }
  }
  await storage.init();
  return storage;
}

/** Errors of the storage layer that callers recognise (kept apart so the backends need not import storage/index.ts). */

/** The embedded store's directory is held by another live process (PGlite allows one writer). */
export class StorageLockedError extends Error {
  constructor(
    readonly directory: string,
    readonly owner: number,
  ) {
    super(
      `the embedded store in ${directory} is in use by process ${owner}; stop it first, or use PostgreSQL or Redis to share a store`,
    );
    this.name = 'StorageLockedError';
  }
}

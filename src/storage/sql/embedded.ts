/**
 * Embedded backend: PostgreSQL compiled to WASM (PGlite), persisted in a local directory, running the same SQL as the
 * PostgreSQL store. For a single process only: PGlite holds the directory exclusively and has one connection.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PGlite, type Transaction } from '@electric-sql/pglite';
import { StorageUnavailableError } from '../../model/errors.js';
import { StorageLockedError } from '../errors.js';
import type { StoreOptions } from '../options.js';
import type { Storage } from '../../model/ports.js';
import { mapUnstorableValue, type SqlExecutor, type SqlQueryable, type SqlResult, type SqlRow } from './driver.js';
import { SqlStorage } from './sql-storage.js';

/**
 * Creates the embedded store in `dir` (created if missing; `memory://` keeps it in memory, for tests). Call `init()`
 * before use.
 */
export function createEmbeddedStorage(dir: string, options: StoreOptions): Storage {
  if (dir.startsWith('memory://'))
    return new SqlStorage(new PgliteExecutor(new PGlite(dir), true), 'embedded', options);
  mkdirSync(dir, { recursive: true });
  const release = lockDirectory(dir);
  try {
    return new SqlStorage(new PgliteExecutor(new PGlite(dir), true, release), 'embedded', options);
  } catch (err) {
    release();
    throw err;
  }
}

/**
 * PGlite does not guard its directory against a second process, and two writers corrupt it. A pid lock file makes a
 * second `gatehouse serve` (or a CLI command while the server runs) fail with a clear message instead.
 */
const lockedHere = new Set<string>();

function lockDirectory(dir: string): () => void {
  const file = resolve(dir, 'gatehouse.lock');
  if (lockedHere.has(file)) throw new Error(`the embedded store in ${dir} is already open in this process`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      lockedHere.add(file);
      return () => {
        lockedHere.delete(file);
        rmSync(file, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(readFileSync(file, 'utf8'));
      // Our own pid in the file is stale (a restarted container is often pid 1 again): we hold no lock we did not record.
      if (owner && owner !== process.pid && processAlive(owner)) {
        throw new StorageLockedError(resolve(dir), owner);
      }
      rmSync(file, { force: true }); // stale lock of a process that died
    }
  }
  throw new Error(`cannot lock the embedded store in ${dir}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * An embedded store on a PGlite instance the caller owns (close() leaves it open). Stores with different
 * `sqlSchema`s can share one instance, which is how tests avoid starting a PGlite (seconds each) per store.
 */
export function createEmbeddedStorageOn(db: PGlite, options: StoreOptions): Storage {
  return new SqlStorage(new PgliteExecutor(db, false), 'embedded', options);
}

/**
 * {@link SqlExecutor} over one PGlite instance. PGlite has a single connection, so statements and transactions must
 * not interleave: every call goes through one FIFO queue (PGlite also serialises internally; the queue keeps our
 * ordering explicit and independent of that).
 */
class PgliteExecutor implements SqlExecutor {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly db: PGlite,
    private readonly ownsDb: boolean,
    private readonly onClose: () => void = () => undefined,
  ) {}

  query<R = SqlRow>(text: string, params?: readonly unknown[]): Promise<SqlResult<R>> {
    return this.exclusive(() => run<R>(this.db, text, params));
  }

  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    return this.exclusive(() =>
      this.db.transaction((t) =>
        fn({ query: <R = SqlRow>(text: string, params?: readonly unknown[]) => run<R>(t, text, params) }),
      ),
    );
  }

  close(): Promise<void> {
    // Queued behind earlier work, so what was already asked for completes and the data directory is left consistent.
    return this.exclusive(async () => {
      this.closed = true;
      if (this.ownsDb && !this.db.closed) await this.db.close();
      this.onClose();
    }, true);
  }

  private exclusive<T>(work: () => Promise<T>, closing = false): Promise<T> {
    const result = this.queue.then(() => {
      if (!closing && (this.closed || this.db.closed)) throw new StorageUnavailableError('embedded storage is closed');
      return work();
    });
    this.queue = result.catch(() => undefined);
    return result;
  }
}

async function run<R>(db: PGlite | Transaction, text: string, params?: readonly unknown[]): Promise<SqlResult<R>> {
  // PGlite does not turn undefined into NULL the way pg does.
  const values = params?.map((v) => (v === undefined ? null : v));
  let res;
  try {
    res = await db.query<R>(text, values);
  } catch (err) {
    throw mapUnstorableValue(err);
  }
  return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
}

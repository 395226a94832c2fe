/**
 * The embedded store's control socket: the embedded store (PGlite) belongs to one process, so while a server runs on
 * it the CLI cannot open it. The server listens on `<data directory>/control.sock` (a unix socket, mode 0600: only
 * its own user may connect), and the CLI, finding it, sends its operation there (tenants/operations.ts) instead of
 * opening the store. The server runs the operation on its own store, in the scope of `--tenant`, and answers JSON.
 * One request per connection: `POST /op` with `{ op, tenant?, args }`; the answer is `{ result }` or `{ error }`.
 */
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { join } from 'node:path';
import type { Deps } from '../context.js';
import type { Logger } from 'pino';
import { TenantAdminError, type TenantAdmin } from '../tenants/admin.js';
import { AdminError, storeAdminFor } from '../tenants/store-admin.js';
import { runOperation } from '../tenants/operations.js';

/** Where a data directory's control socket is. */
export function controlSocketPath(directory: string): string {
  return join(directory, 'control.sock');
}

/** The largest request accepted (operations carry small JSON: metadata, a password). */
const MAX_BODY = 256 * 1024;

/** A refusal the server sent back (status and message as the admin API would). */
export class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ControlError';
  }
}

/**
 * Listens on the control socket of `directory` for the running server. `scope` gives the deps of the deployment
 * (undefined) or of a tenant (undefined when there is none); `tenants`, the deployment's tenant operations (run in
 * the deployment's scope only). Returns a closer that also removes the socket.
 */
export async function startControlSocket(
  directory: string,
  scope: (tenant: string | undefined) => Promise<Deps | undefined>,
  logger: Logger,
  tenants?: TenantAdmin,
): Promise<() => Promise<void>> {
  const path = controlSocketPath(directory);
  // A socket left by a process that died: this process holds the store's lock, so nobody else listens on it.
  if (existsSync(path)) unlinkSync(path);
  const server: Server = createServer((req, res) => {
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (req.method !== 'POST' || req.url !== '/op') return answer(404, { error: { message: 'no such endpoint' } });
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(chunk);
    });
    req.on('end', () => {
      void (async () => {
        let op = '';
        let tenant: string | undefined;
        let auditDeps: Pick<Deps, 'audit'> | undefined;
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
            op?: unknown;
            tenant?: unknown;
            args?: unknown;
          };
          op = typeof body.op === 'string' ? body.op : '';
          tenant = typeof body.tenant === 'string' ? body.tenant : undefined;
          const args = (typeof body.args === 'object' && body.args !== null ? body.args : {}) as Record<
            string,
            unknown
          >;
          const deps = await scope(tenant);
          if (!deps) throw new AdminError(404, 'not_found', `no tenant ${tenant ?? ''}`);
          auditDeps = deps;
          const result = await runOperation(
            {
              admin: storeAdminFor(deps, 'cli'),
              storage: deps.storage,
              config: deps.config,
              upstream: (entry) => deps.upstreams.get(entry.id),
              ...(tenant === undefined && tenants && { tenants }),
            },
            op,
            args,
          );
          audit(deps, op, 'success', 200);
          answer(200, { result });
        } catch (err) {
          const status =
            err instanceof AdminError || err instanceof TenantAdminError
              ? err.status
              : err instanceof SyntaxError
                ? 400
                : 500;
          if (auditDeps) audit(auditDeps, op, 'failure', status);
          if (status === 500) logger.error({ err, op }, 'control socket: operation failed');
          answer(status, {
            error: { message: status === 500 ? 'the operation failed (see the server log)' : (err as Error).message },
          });
        }
      })();
    });
  });
  // Created with mode 0600 from the start (umask), so no other user can connect between bind and chmod.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
  } finally {
    process.umask(umask);
  }
  chmodSync(path, 0o600);
  return () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    });
}

/** The audit event of one control-socket call (as the admin API's, http/routes/admin.ts auditAdminCall). */
function audit(deps: Pick<Deps, 'audit'>, op: string, outcome: 'success' | 'failure', status: number): void {
  deps.audit.emit({ type: 'admin.call', method: 'CONTROL', route: `control:${op}`, status, actor: 'cli', outcome });
}

/**
 * Sends an operation to the server listening on `path`. Rejects with the connection's error (ENOENT, ECONNREFUSED:
 * no server there) or a {@link ControlError} with the server's refusal.
 */
export function sendControl(path: string, op: string, tenant: string | undefined, args: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { socketPath: path, path: '/op', method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
              result?: unknown;
              error?: { message?: string };
            };
            if (res.statusCode === 200) resolve(body.result);
            else reject(new ControlError(res.statusCode ?? 500, body.error?.message ?? 'the server refused'));
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ op, ...(tenant !== undefined && { tenant }), args }));
  });
}

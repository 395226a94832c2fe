/** A local https server for Client ID Metadata Documents, with a throwaway self-signed certificate (openssl). */
import { createServer, type Server } from 'node:https';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CimdDoc {
  status?: number;
  body: string;
  type?: string;
  delayMs?: number;
  /** Extra response headers (e.g. cache-control). */
  headers?: Record<string, string>;
}

export interface CimdServer {
  origin: string;
  /** PEM file to trust (config clientIdMetadataDocuments.trustedCaFile). */
  caFile: string;
  docs: Map<string, CimdDoc>;
  close(): void;
}

export async function startCimdServer(): Promise<CimdServer> {
  const dir = mkdtempSync(join(tmpdir(), 'gh-cimd-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  const docs = new Map<string, CimdDoc>();
  const server: Server = createServer(
    { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
    (req, res) => {
      const doc = docs.get(req.url ?? '');
      if (!doc) return void res.writeHead(404).end();
      setTimeout(
        () =>
          res
            .writeHead(doc.status ?? 200, { 'content-type': doc.type ?? 'application/json', ...doc.headers })
            .end(doc.body),
        doc.delayMs ?? 0,
      );
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const origin = `https://localhost:${(server.address() as { port: number }).port}`;
  return {
    origin,
    caFile: join(dir, 'cert.pem'),
    docs,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

import type { AddressInfo } from 'node:net';
import express from 'express';
import type { AuthInfo as SdkAuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { expressProtectedResourceMetadata, requireBearerAuth } from '../../src/resource/index.js';
import { describeAuth, describeMiddleware, nodeRequest } from './middleware-suite.js';

describeMiddleware('Express', async (verifier, metadata) => {
  const app = express();
  app.use(expressProtectedResourceMetadata(metadata));
  app.get('/mcp', requireBearerAuth(verifier), (req, res) => {
    // req.auth is typed by gatehouse/resource's augmentation and fits what SDK transports read.
    const sdkAuth: SdkAuthInfo | undefined = req.auth;
    void sdkAuth;
    res.json(describeAuth(req.auth!));
  });
  app.get('/mcp/admin', requireBearerAuth(verifier, { requiredScopes: ['admin'] }), (req, res) => {
    res.json(describeAuth(req.auth!));
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    request: (path, init) => nodeRequest(base, path, init),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
});

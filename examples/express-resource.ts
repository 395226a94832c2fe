import express from 'express';
import { createResourceVerifier, expressProtectedResourceMetadata, requireBearerAuth } from 'gatehouse/resource';

const issuer = process.env.GATEHOUSE_ISSUER ?? 'https://auth.example.com';
const resource = process.env.RESOURCE_URL ?? 'https://mcp.example.com/mcp';
const verifier = createResourceVerifier({ issuer, resource, requiredScopes: ['mcp:read'] });

const app = express();
app.use(expressProtectedResourceMetadata({ resource, authorizationServers: [issuer], scopesSupported: ['mcp:read'] }));
app.use('/mcp', requireBearerAuth(verifier)); // sets req.auth: typed, and what the MCP SDK's transports read
app.post('/mcp', (req, res) => {
  res.json({ subject: req.auth?.subject, client_id: req.auth?.clientId, scopes: req.auth?.scopes });
});
const port = Number(process.env.PORT ?? 3001);
app.listen(port, () => console.log(`listening on ${port}`));

import { fetchProtectedResourceMetadata, withBearerAuth } from '../../src/resource/index.js';
import { describeAuth, describeMiddleware } from './middleware-suite.js';
import type { TestResponse } from './middleware-suite.js';

describeMiddleware('fetch', async (verifier, metadata) => {
  const serveMetadata = fetchProtectedResourceMetadata(metadata);
  const mcp = withBearerAuth(verifier, (_request, auth) => Response.json(describeAuth(auth)));
  const admin = withBearerAuth(verifier, (_request, auth) => Response.json(describeAuth(auth)), {
    requiredScopes: ['admin'],
  });
  const handle = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    return (
      serveMetadata(request) ??
      (path === '/mcp' ? mcp(request) : path === '/mcp/admin' ? admin(request) : new Response(null, { status: 404 }))
    );
  };
  return {
    async request(path, init = {}): Promise<TestResponse> {
      const headers = new Headers();
      for (const [name, value] of Object.entries(init.headers ?? {})) {
        for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
      }
      const res = await handle(
        new Request(new URL(path, 'http://127.0.0.1'), { method: init.method ?? 'GET', headers }),
      );
      const out: Record<string, string> = {};
      res.headers.forEach((value, name) => {
        out[name] = value;
      });
      return { status: res.status, headers: out, body: await res.text() };
    },
    close: async () => {},
  };
});

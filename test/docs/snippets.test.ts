/**
 * Every ```ts / ```js block in README.md and docs/ typechecks against the published types (package exports → dist/),
 * blocks tied to a file (`file=examples/…`) match it verbatim, the examples import `gatehouse` as a user would, and
 * consumer code gets typed `req.auth` (Express), `request.auth` (Fastify) and `auth` (fetch) without casts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { extractSnippets, markdownFiles, ROOT, typecheck, type Snippet, type SnippetProgram } from './snippets.js';

const snippets = markdownFiles().flatMap((doc) => extractSnippets(doc));
const checked = snippets.filter((s) => !s.skip);
const nameOf = (s: Snippet) => `${s.doc.replace(/[^A-Za-z0-9]/g, '_')}-L${s.line}`;

/** Consumer code using each adapter's typed auth; `@ts-expect-error` lines fail if the type were `any` or missing. */
const CONSUMERS: Record<string, string> = {
  'consumer-express': `
import express from 'express';
import { createResourceVerifier, requireBearerAuth, type RequestAuth } from 'gatehouse/resource';
const verifier = createResourceVerifier({ issuer: 'https://as.example', resource: 'https://rs.example/mcp' });
const app = express();
app.get('/me', requireBearerAuth(verifier), (req, res) => {
  const auth: RequestAuth | undefined = req.auth;
  const subject: string | undefined = req.auth?.subject;
  const resource: URL | undefined = req.auth?.resource;
  // @ts-expect-error auth is optional: it is unset on routes without the middleware
  const direct: string = req.auth.subject;
  // @ts-expect-error not any: subject is a string
  const wrong: number | undefined = req.auth?.subject;
  res.json({ auth, subject, resource, direct, wrong });
});
`,
  'consumer-fastify': `
import Fastify from 'fastify';
import { createResourceVerifier, fastifyBearerAuth, fastifyBearerAuthPlugin, type RequestAuth } from 'gatehouse/resource';
const verifier = createResourceVerifier({ issuer: 'https://as.example', resource: 'https://rs.example/' });
const app = Fastify();
app.get('/me', { preHandler: fastifyBearerAuth(verifier) }, async (request) => {
  const auth: RequestAuth | undefined = request.auth;
  // @ts-expect-error not any: scopes is string[]
  const wrong: number | undefined = request.auth?.scopes;
  return { auth, wrong, scopes: request.auth?.scopes.join(' ') };
});
app.register(async (api) => {
  await api.register(fastifyBearerAuthPlugin(verifier));
  api.get('/x', async (request) => ({ client: request.auth?.clientId }));
});
`,
  'consumer-fetch': `
import { createResourceVerifier, withBearerAuth } from 'gatehouse/resource';
const verifier = createResourceVerifier({ issuer: 'https://as.example', resource: 'https://rs.example/' });
const handler = withBearerAuth(verifier, (request, auth) => {
  const subject: string = auth.subject;
  // @ts-expect-error not any: expiresAt is a number
  const wrong: string = auth.expiresAt;
  return Response.json({ url: request.url, subject, wrong });
});
// Extra arguments (env, ctx) pass through, typed.
const worker = withBearerAuth(verifier, (_request, auth, env: { GREETING: string }) => new Response(env.GREETING + auth.subject));
export const out: Promise<Response>[] = [handler(new Request('https://rs.example/')), worker(new Request('https://rs.example/'), { GREETING: 'hi ' })];
// @ts-expect-error the env argument is required and typed
void worker(new Request('https://rs.example/'));
`,
};

// A deliberately bad snippet, checked in the same program, proves errors are found and located.
const [broken] = extractSnippets('BROKEN.md', 'text\n\n```ts\nconst n: number = 1;\nconst s: string = n;\n```\n');

let program: SnippetProgram;
beforeAll(() => {
  const files = [
    ...[...checked, broken!].map((s) => ({ name: nameOf(s), code: s.code, lang: s.lang })),
    ...Object.entries(CONSUMERS).map(([name, code]) => ({ name, code, lang: 'ts' as const })),
  ];
  const byName = new Map([...checked, broken!].map((s) => [nameOf(s), s]));
  program = typecheck(files, (name, line) => {
    const s = byName.get(name);
    return s ? `${s.doc}:${s.line + line}` : `${name}:${line + 1}`;
  });
}, 120_000);

describe('documentation snippets', () => {
  it('finds the README snippets (the extractor is not silently matching nothing)', () => {
    expect(snippets.filter((s) => s.doc === 'README.md').length).toBeGreaterThanOrEqual(3);
    // Fragments stay rare.
    expect(snippets.filter((s) => s.skip).length).toBeLessThanOrEqual(1);
  });

  it.each(checked.map((s) => [`${s.doc}:${s.line}`, s] as const))(
    '%s typechecks against the package exports',
    (_where, s) => {
      expect(program.errors(nameOf(s))).toEqual([]);
    },
  );

  it.each(snippets.filter((s) => s.file !== undefined).map((s) => [`${s.doc}:${s.line}`, s] as const))(
    '%s is its example file verbatim',
    (_where, s) => {
      expect(s.code.trimEnd(), `${s.doc}:${s.line} differs from ${s.file}`).toBe(
        readFileSync(join(ROOT, s.file!), 'utf8').trimEnd(),
      );
    },
  );

  it('reports a broken snippet with its Markdown file and line', () => {
    expect(program.errors(nameOf(broken!))).toEqual([expect.stringMatching(/^BROKEN\.md:5:7: TS2322 /)]);
  });
});

describe('typed auth for consumers of gatehouse/resource', () => {
  it.each(Object.keys(CONSUMERS))('%s typechecks (no casts, not any)', (name) => {
    expect(program.errors(name)).toEqual([]);
  });
});

describe('examples', () => {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
    );

  it('import gatehouse through the package exports, never from src/', () => {
    const files = walk(join(ROOT, 'examples'));
    expect(files.length).toBeGreaterThan(0);
    const offenders = files
      .filter((f) => /from\s+['"](\.\.?\/)+(src|dist)\//.test(readFileSync(f, 'utf8')))
      .map((f) => relative(ROOT, f));
    expect(offenders).toEqual([]);
    expect(readFileSync(join(ROOT, 'examples/mcp-server/server.ts'), 'utf8')).toContain("from 'gatehouse/resource'");
  });
});

/**
 * Extracts ```ts / ```js fenced blocks from the Markdown docs and typechecks them with the TypeScript compiler API
 * against the package's published types (`gatehouse`, `gatehouse/resource` resolve through package.json `exports`
 * to dist/, as they do for a user).
 *
 * Info-string words after the language: `file=PATH` (the block must be that file verbatim, which other tests run),
 * `snippet-skip` (a fragment, not checked; give the reason in the text around it).
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

export interface Snippet {
  /** Markdown file, relative to the repository root. */
  doc: string;
  /** 1-based line of the first code line. */
  line: number;
  lang: 'ts' | 'js';
  code: string;
  file?: string;
  skip: boolean;
}

const LANGS: Record<string, Snippet['lang']> = { ts: 'ts', typescript: 'ts', js: 'js', javascript: 'js', mjs: 'js' };

/** README.md and the other top-level Markdown files, and docs/ recursively. */
export function markdownFiles(): string[] {
  const top = readdirSync(ROOT)
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(ROOT, f));
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.md') ? [join(dir, e.name)] : [],
    );
  const docs = existsSync(join(ROOT, 'docs')) ? walk(join(ROOT, 'docs')) : [];
  return [...top, ...docs].map((p) => relative(ROOT, p)).sort();
}

export function extractSnippets(doc: string, text = readFileSync(join(ROOT, doc), 'utf8')): Snippet[] {
  const lines = text.split('\n');
  const out: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)\s*(.*)$/.exec(lines[i]!);
    if (open === null) continue;
    const [, indent, fence, info, rest] = open as unknown as [string, string, string, string, string];
    let end = i + 1;
    while (end < lines.length && !lines[end]!.trimStart().startsWith(fence)) end++;
    const lang = LANGS[info.toLowerCase()];
    if (lang !== undefined) {
      const words = rest.split(/\s+/).filter(Boolean);
      const file = words.find((w) => w.startsWith('file='))?.slice('file='.length);
      out.push({
        doc,
        line: i + 2,
        lang,
        code: lines
          .slice(i + 1, end)
          .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
          .join('\n'),
        file,
        skip: words.includes('snippet-skip'),
      });
    }
    i = end;
  }
  return out;
}

export interface SnippetProgram {
  /** Diagnostics as `doc:line:col: TSxxxx message`, per virtual file name. */
  errors(name: string): string[];
}

/**
 * Typechecks virtual files placed inside the repository (so the package's self-reference resolves) in one program
 * with the repository's compiler options and skipLibCheck off, so dist/'s own .d.ts are checked too. Diagnostics in
 * other libraries' .d.ts are not ours and are ignored.
 */
export function typecheck(
  files: { name: string; code: string; lang: 'ts' | 'js' }[],
  locate: (name: string, line: number) => string,
): SnippetProgram {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(ROOT, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  )!;
  const options: ts.CompilerOptions = {
    ...config.options,
    noEmit: true,
    skipLibCheck: false,
    allowJs: true,
    checkJs: true,
  };
  const virtual = new Map<string, string>();
  for (const f of files) virtual.set(join(ROOT, '.snippets', `${f.name}.${f.lang}`), `${f.code}\nexport {};\n`);
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.fileExists = (p) => virtual.has(p) || fileExists.call(host, p);
  host.readFile = (p) => virtual.get(p) ?? readFile.call(host, p);
  host.getSourceFile = (p, lang, ...rest) => {
    const code = virtual.get(p);
    return code !== undefined ? ts.createSourceFile(p, code, lang, true) : getSourceFile.call(host, p, lang, ...rest);
  };
  const program = ts.createProgram([...virtual.keys()], options, host);
  const dist = join(ROOT, 'dist') + '/';
  const byName = new Map<string, string[]>();
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const path = d.file?.fileName;
    const message = `TS${d.code} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    if (path === undefined) {
      byName.set('', [...(byName.get('') ?? []), message]);
      continue;
    }
    const { line, character } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
    if (virtual.has(path)) {
      const name = path.slice(join(ROOT, '.snippets').length + 1).replace(/\.(ts|js)$/, '');
      byName.set(name, [...(byName.get(name) ?? []), `${locate(name, line)}:${character + 1}: ${message}`]);
    } else if (path.startsWith(dist)) {
      // An error in our published declarations breaks every consumer that does not skip lib checks.
      byName.set('', [...(byName.get('') ?? []), `${relative(ROOT, path)}:${line + 1}:${character + 1}: ${message}`]);
    }
  }
  return { errors: (name) => [...(byName.get('') ?? []), ...(byName.get(name) ?? [])] };
}

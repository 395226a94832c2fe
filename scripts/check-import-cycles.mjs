#!/usr/bin/env node
// Fails when the modules of src/ import each other in a cycle. Builds the import graph with the TypeScript compiler
// API (the same module resolution as tsc, so `./x.js` finds `./x.ts`), counting every import and re-export, type-only
// ones too: a type-only cycle costs nothing at run time but still ties two layers into one.
// An import that closes a cycle and cannot be removed yet goes in KNOWN_EDGES with its reason; the check ignores that
// edge, and fails once the import is gone so the list only shrinks.
// Usage: node scripts/check-import-cycles.mjs [--graph] [path/to/project]   (--graph prints every edge of the graph)
import { readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** Imports excused from the check, as 'src/from.ts -> src/to.ts', each with why it is still there. */
const KNOWN_EDGES = new Map([
  [
    'src/config/schema.ts -> src/grants/index.ts',
    'the static-client grant_types enum reads the grant registry (grants import Config only as a type, so no runtime cycle); goes when the schema takes the names from the composition root',
  ],
]);

const root = resolve(process.argv.slice(2).find((a) => !a.startsWith('--')) ?? new URL('..', import.meta.url).pathname);
const src = join(root, 'src');

function sourceFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && !e.name.endsWith('.test.ts') ? [p] : [];
  });
}

const configPath = join(root, 'tsconfig.json');
const { config } = ts.readConfigFile(configPath, ts.sys.readFile);
const { options } = ts.parseJsonConfigFileContent(config, ts.sys, root);
const files = sourceFiles(src);
const inSrc = new Set(files);
const rel = (p) => relative(root, p);

/** module → the modules of src/ it imports (value or type), with the import's line for the report. */
const graph = new Map();
for (const file of files) {
  const text = ts.sys.readFile(file) ?? '';
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const edges = new Map();
  const add = (specifier, node) => {
    const resolved = ts.resolveModuleName(specifier, file, options, ts.sys).resolvedModule?.resolvedFileName;
    if (resolved && inSrc.has(resolved) && !edges.has(resolved)) {
      edges.set(resolved, sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1);
    }
  };
  const visit = (node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier) {
      if (ts.isStringLiteral(node.moduleSpecifier)) add(node.moduleSpecifier.text, node);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] &&
      ts.isStringLiteral(node.arguments[0])
    ) {
      add(node.arguments[0].text, node);
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      add(node.argument.literal.text, node);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  graph.set(file, edges);
}

const problems = [];
for (const edge of KNOWN_EDGES.keys()) {
  const [from, to] = edge.split(' -> ').map((p) => join(root, p));
  // Only for trees that hold the importing file (the tests run this script on small trees of their own).
  if (graph.has(from) && graph.get(from).delete(to) !== true) {
    problems.push(`known import gone, remove it from KNOWN_EDGES in scripts/check-import-cycles.mjs: ${edge}`);
  }
}

if (process.argv.includes('--graph')) {
  for (const [from, edges] of graph) for (const to of edges.keys()) console.log(`${rel(from)} -> ${rel(to)}`);
}

// Tarjan's strongly connected components: every component of more than one module (or a self-import) is a cycle.
let index = 0;
const stack = [];
const state = new Map();
const components = [];
function strongConnect(v) {
  state.set(v, { index, low: index, onStack: true });
  index++;
  stack.push(v);
  for (const w of graph.get(v).keys()) {
    if (!state.has(w)) {
      strongConnect(w);
      state.get(v).low = Math.min(state.get(v).low, state.get(w).low);
    } else if (state.get(w).onStack) {
      state.get(v).low = Math.min(state.get(v).low, state.get(w).index);
    }
  }
  if (state.get(v).low === state.get(v).index) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      state.get(w).onStack = false;
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || graph.get(v).has(v)) components.push(component);
  }
}
for (const v of graph.keys()) if (!state.has(v)) strongConnect(v);

/** One concrete loop through a component, for the message: a shortest path from its first module back to itself. */
function loopThrough(component) {
  const members = new Set(component);
  const start = [...members].sort()[0];
  const previous = new Map([[start, undefined]]);
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift();
    for (const w of graph.get(v).keys()) {
      if (!members.has(w)) continue;
      if (w === start) {
        const path = [v];
        for (let p = previous.get(v); p !== undefined; p = previous.get(p)) path.unshift(p);
        return [...path, start].map((p, i, all) =>
          i < all.length - 1 ? `${rel(p)}:${graph.get(p).get(all[i + 1])}` : rel(p),
        );
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return component.map(rel);
}

for (const component of components) {
  problems.push(`import cycle: ${loopThrough(component).join(' → ')} (modules in the cycle: ${component.length})`);
}
if (problems.length > 0) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
const known =
  KNOWN_EDGES.size > 0 ? ` (${KNOWN_EDGES.size} known import${KNOWN_EDGES.size > 1 ? 's' : ''} excused)` : '';
console.log(`import cycles: none in ${files.length} modules of src/${known}`);

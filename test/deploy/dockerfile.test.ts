/**
 * Deployment files: the Dockerfile, the compose examples and the systemd unit.
 *
 * Always: static checks that can fail (multi-stage build, non-root USER, a HEALTHCHECK on /health, every COPY source
 * exists and is not excluded by .dockerignore, compose files parse and wire healthchecks, no inline secrets, the unit's
 * hardening), and the image's own CMD and HEALTHCHECK commands run here with the image's ENV, without Docker.
 * With a Docker engine: the image is built and run, /health answers 200 and the process is not root. Without one the
 * test skips with a message, also under CI=true: machines of this kind have no engine (a documented exception).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/server.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const DEPLOY = join(ROOT, 'examples/deploy');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

// --- Dockerfile ---

interface Instruction {
  keyword: string;
  args: string;
  stage: number;
}

/** Dockerfile instructions (comments dropped, `\` continuations joined), each with the index of its stage. */
function parseDockerfile(text: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!current && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      current += line.slice(0, -1) + ' ';
      continue;
    }
    logical.push(current + line);
    current = '';
  }
  if (current) throw new Error('Dockerfile ends inside a line continuation');
  let stage = -1;
  return logical.map((line) => {
    const m = /^([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`not an instruction: ${line}`);
    const keyword = m[1]!.toUpperCase();
    if (keyword === 'FROM') stage++;
    if (stage < 0 && keyword !== 'ARG') throw new Error(`${keyword} before the first FROM`);
    return { keyword, args: m[2]!.trim(), stage };
  });
}

/** Exec form (`["a", "b"]`) of CMD / HEALTHCHECK CMD; shell form is refused (no shell needed, signals reach node). */
function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === 'string'))
    throw new Error(`not an exec form: ${args}`);
  return parsed;
}

/** ENV of a stage: `K=V K2=V2` forms (quotes not used in our Dockerfile). */
function stageEnv(instructions: Instruction[], stage: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of instructions.filter((x) => x.stage === stage && x.keyword === 'ENV')) {
    for (const pair of i.args.split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new Error(`ENV without K=V: ${i.args}`);
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

/** .dockerignore patterns (top-level names and `*.ext` globs are all we use). */
function ignored(path: string, patterns: string[]): boolean {
  const top = path.replace(/^\.\//, '').split('/')[0]!;
  return patterns.some((p) => (p.startsWith('*') ? top.endsWith(p.slice(1)) : p.replace(/\/$/, '') === top));
}

const dockerfile = parseDockerfile(read('Dockerfile'));
const finalStage = Math.max(...dockerfile.map((i) => i.stage));
const inFinal = (keyword: string) => dockerfile.filter((i) => i.stage === finalStage && i.keyword === keyword);
const healthcheckCommand = () => {
  const [hc] = inFinal('HEALTHCHECK');
  const cmd = /(?:^|\s)CMD\s+(\[.*\])$/.exec(hc!.args);
  if (!cmd) throw new Error(`HEALTHCHECK without an exec-form CMD: ${hc!.args}`);
  return execForm(cmd[1]!);
};

describe('Dockerfile (static)', () => {
  it('is multi-stage: a build stage, and a runtime stage that copies the build output', () => {
    const froms = dockerfile.filter((i) => i.keyword === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    const stageNames = froms.map((f) => /\bAS\s+(\S+)$/i.exec(f.args)?.[1]);
    const fromOther = inFinal('COPY').filter((c) => /--from=/.test(c.args));
    expect(fromOther.length).toBeGreaterThan(0);
    for (const c of fromOther) expect(stageNames.slice(0, finalStage)).toContain(/--from=(\S+)/.exec(c.args)![1]);
    const runs = (stage: number) =>
      dockerfile
        .filter((i) => i.stage === stage && i.keyword === 'RUN')
        .map((r) => r.args)
        .join('\n');
    expect(runs(0)).toMatch(/\bnpm ci\b/);
    expect(runs(0)).toMatch(/\bnpm run build\b/);
    expect(runs(finalStage)).toMatch(/\bnpm ci\b.*--omit=dev/);
    for (const image of froms.map((f) => f.args.split(/\s+/).find((w) => !w.startsWith('--'))!)) {
      // Node 20 is what the project promises (package.json engines); a floating tag would drift.
      expect(image).toMatch(/^node:20[-.]/);
    }
  });

  it('runs as a non-root USER, listens on 0.0.0.0:8080, keeps the embedded store in a volume', () => {
    const users = inFinal('USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1)!.args.split(':')[0]!;
    expect(['root', '0']).not.toContain(user);
    // USER comes before CMD, so the server runs as that user.
    const order = dockerfile.filter((i) => i.stage === finalStage).map((i) => i.keyword);
    expect(order.lastIndexOf('USER')).toBeLessThan(order.lastIndexOf('CMD'));
    const env = stageEnv(dockerfile, finalStage);
    expect(env.HOST).toBe('0.0.0.0');
    expect(inFinal('EXPOSE').map((e) => e.args)).toContain(env.PORT ?? '8080');
    const volumes = inFinal('VOLUME')
      .map((v) => v.args)
      .join(' ');
    expect(volumes).toContain(env.GATEHOUSE_STORAGE);
  });

  it('starts the server directly, not through `npm start` (whose prestart would install and compile)', () => {
    const [cmd] = inFinal('CMD');
    const argv = execForm(cmd!.args);
    expect(argv).toEqual(['node', 'bin/gatehouse.mjs', 'serve']);
    expect(inFinal('ENTRYPOINT')).toEqual([]);
  });

  it('has a HEALTHCHECK that asks /health with node (the slim image has no curl)', () => {
    expect(inFinal('HEALTHCHECK')).toHaveLength(1);
    const argv = healthcheckCommand();
    expect(argv[0]).toBe('node');
    expect(argv.join(' ')).toContain('/health');
    expect(argv.join(' ')).not.toMatch(/\bcurl\b|\bwget\b/);
  });

  it('every COPY source exists in the build context and is not excluded by .dockerignore', () => {
    const patterns = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    const copies = dockerfile.filter((i) => (i.keyword === 'COPY' || i.keyword === 'ADD') && !/--from=/.test(i.args));
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      const words = c.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      for (const source of words.slice(0, -1)) {
        expect(existsSync(join(ROOT, source)), `COPY ${source}: missing`).toBe(true);
        expect(ignored(source, patterns), `COPY ${source}: excluded by .dockerignore`).toBe(false);
      }
    }
    // The context never carries local state or secrets.
    for (const path of ['node_modules', 'data', '.env', '.git', 'examples/deploy/gatehouse-postgres.env']) {
      expect(ignored(path, patterns), `${path} should be in .dockerignore`).toBe(true);
    }
  });
});

/** Polls until `check` resolves true or the time is up. */
async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/** Runs the image's HEALTHCHECK command on this machine; resolves its exit code. */
function runHealthcheck(env: Record<string, string>): Promise<number | null> {
  const [program, ...args] = healthcheckCommand();
  expect(program).toBe('node');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' });
    child.on('exit', (code) => resolve(code));
  });
}

describe("the image's CMD and HEALTHCHECK, run here without Docker", () => {
  it('CMD serves with the image ENV (embedded store in the volume directory); HEALTHCHECK passes, then fails once it stops', async () => {
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-image-'));
    // The runtime stage's ENV, with the two values a test machine must change: a free port, a scratch data dir.
    const env = {
      ...stageEnv(dockerfile, finalStage),
      PORT: String(port),
      GATEHOUSE_STORAGE: join(dataDir, 'data'),
      GATEHOUSE_LOG_LEVEL: 'warn',
    };
    const [program, ...args] = execForm(inFinal('CMD')[0]!.args);
    expect(program).toBe('node');
    const server = spawn(process.execPath, args, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    server.stderr.on('data', (d) => (stderr += d));
    try {
      const up = await eventually(async () => (await fetch(`http://127.0.0.1:${port}/health`)).status === 200, 45_000);
      expect(up, `the server did not answer /health: ${stderr}`).toBe(true);
      expect(await runHealthcheck({ PORT: String(port) })).toBe(0);
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    }
    // Nothing listens any more: the same command must report unhealthy.
    expect(await runHealthcheck({ PORT: String(port) })).toBe(1);
  }, 90_000);
});

// --- compose files: a YAML subset (block maps, block sequences, flow sequences of strings, scalars) ---

type Yaml = string | Yaml[] | { [key: string]: Yaml };

/**
 * Parses the YAML subset the compose examples are written in, and throws on anything outside it (tabs, anchors,
 * multi-line scalars, bad indentation), so "it parses" means something without a YAML dependency.
 */
function parseYamlSubset(text: string): Yaml {
  const lines: Array<{ indent: number; text: string; n: number }> = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.includes('\t')) throw new Error(`line ${i + 1}: tab`);
    const stripped = raw.replace(/(^|\s)#.*$/, '').trimEnd();
    if (!stripped.trim()) return;
    if (/^\s*[&*!|>]|:\s*[&*!|>]/.test(stripped)) throw new Error(`line ${i + 1}: unsupported YAML: ${raw}`);
    lines.push({ indent: stripped.length - stripped.trimStart().length, text: stripped.trim(), n: i + 1 });
  });
  let pos = 0;
  const scalar = (v: string, n: number): Yaml => {
    if (v.startsWith('[')) {
      try {
        const arr: unknown = JSON.parse(v);
        if (Array.isArray(arr) && arr.every((a) => typeof a === 'string')) return arr;
      } catch {
        /* falls through */
      }
      throw new Error(`line ${n}: a flow sequence must be a JSON array of strings: ${v}`);
    }
    if (v.startsWith('"')) {
      try {
        return JSON.parse(v) as string;
      } catch {
        throw new Error(`line ${n}: bad quoted string: ${v}`);
      }
    }
    if (v.startsWith("'") || v.startsWith('{')) throw new Error(`line ${n}: unsupported scalar: ${v}`);
    return v;
  };
  const block = (indent: number): Yaml => {
    const first = lines[pos]!;
    if (first.indent !== indent) throw new Error(`line ${first.n}: bad indentation`);
    if (first.text.startsWith('- ')) {
      const list: Yaml[] = [];
      while (pos < lines.length && lines[pos]!.indent === indent && lines[pos]!.text.startsWith('- ')) {
        const line = lines[pos]!;
        const item = line.text.slice(2);
        if (/^[A-Za-z0-9_.-]+:(\s|$)/.test(item)) {
          // "- key: value" starts a map whose further keys sit under the key.
          lines[pos] = { indent: indent + 2, text: item, n: line.n };
          list.push(block(indent + 2));
        } else {
          list.push(scalar(item, line.n));
          pos++;
        }
      }
      return list;
    }
    const map: Record<string, Yaml> = {};
    while (pos < lines.length && lines[pos]!.indent === indent) {
      const line = lines[pos]!;
      const m = /^([A-Za-z0-9_.-]+):(?:\s+(.*))?$/.exec(line.text);
      if (!m) throw new Error(`line ${line.n}: expected "key: value": ${line.text}`);
      if (m[1]! in map) throw new Error(`line ${line.n}: duplicate key ${m[1]}`);
      pos++;
      if (m[2] !== undefined) map[m[1]!] = scalar(m[2], line.n);
      else if (pos < lines.length && lines[pos]!.indent > indent) map[m[1]!] = block(lines[pos]!.indent);
      else map[m[1]!] = '';
    }
    return map;
  };
  const doc = block(0);
  if (pos !== lines.length) throw new Error(`line ${lines[pos]!.n}: bad indentation`);
  return doc;
}

const asMap = (v: Yaml | undefined, what: string): Record<string, Yaml> => {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${what} is not a map`);
  return v;
};

describe('the YAML subset parser', () => {
  it('parses maps, lists, maps in lists, flow lists; refuses tabs, anchors and bad indentation', () => {
    expect(parseYamlSubset('a:\n  b: c\n  d:\n    - x\n    - k: v\n      l: "w"\n  e: ["p", "q"]\n')).toEqual({
      a: { b: 'c', d: ['x', { k: 'v', l: 'w' }], e: ['p', 'q'] },
    });
    expect(() => parseYamlSubset('a:\n\tb: c\n')).toThrow(/tab/);
    expect(() => parseYamlSubset('a: &x 1\n')).toThrow(/unsupported/);
    expect(() => parseYamlSubset('a:\n    b: c\n  d: e\n')).toThrow(/indentation/);
    expect(() => parseYamlSubset('a: 1\na: 2\n')).toThrow(/duplicate/);
  });
});

for (const [file, backing, envExample] of [
  ['compose.postgres.yml', 'postgres', 'gatehouse-postgres.env.example'],
  ['compose.redis.yml', 'redis', 'gatehouse-redis.env.example'],
] as const) {
  describe(`examples/deploy/${file}`, () => {
    // Parsed in each test, so a file outside the subset fails a named test rather than the collection.
    const load = () => {
      const text = readFileSync(join(DEPLOY, file), 'utf8');
      const doc = asMap(parseYamlSubset(text), file);
      return { text, doc, services: asMap(doc.services, 'services') };
    };

    it('parses (the YAML subset above)', () => {
      expect(Object.keys(load().services).sort()).toEqual(['gatehouse', backing]);
    });

    it(`builds this repository's Dockerfile and starts after ${backing} is healthy`, () => {
      const { services } = load();
      const gatehouse = asMap(services.gatehouse, 'services.gatehouse');
      const build = asMap(gatehouse.build, 'build');
      expect(existsSync(join(DEPLOY, build.context as string, 'Dockerfile'))).toBe(true);
      const dependsOn = asMap(asMap(gatehouse.depends_on, 'depends_on')[backing], `depends_on.${backing}`);
      expect(dependsOn.condition).toBe('service_healthy');
      const healthcheck = asMap(asMap(services[backing], backing).healthcheck, `${backing}.healthcheck`);
      expect(Array.isArray(healthcheck.test) && healthcheck.test.length).toBeGreaterThan(1);
      // Published to the host's loopback only: the reverse proxy is the way in.
      expect(gatehouse.ports).toEqual(['127.0.0.1:8080:8080']);
      expect((gatehouse.environment as Record<string, string>).GATEHOUSE_ISSUER).toMatch(/^https:\/\//);
    });

    it('takes secrets from env files (whose examples exist), never inline', () => {
      const { services, text } = load();
      const gatehouse = asMap(services.gatehouse, 'services.gatehouse');
      expect(gatehouse.env_file).toEqual([envExample.replace(/\.example$/, '')]);
      const example = readFileSync(join(DEPLOY, envExample), 'utf8');
      expect(example).toMatch(/^GATEHOUSE_ENCRYPTION_KEY=$/m);
      expect(example).toMatch(new RegExp(`^GATEHOUSE_STORAGE=${backing}://`, 'm'));
      for (const [name, service] of Object.entries(services)) {
        const env = asMap(service, name).environment;
        for (const key of Object.keys(env ? asMap(env, `${name}.environment`) : {})) {
          expect(key, `${name}: secret ${key} inline`).not.toMatch(/PASSWORD|SECRET|KEY|STORAGE/);
        }
      }
      expect(text).not.toMatch(/GATEHOUSE_ENCRYPTION_KEY\s*[:=]\s*\S/);
      expect(text).not.toMatch(/(postgres|redis):\/\/[^\s"]*:[^\s"@]+@/);
    });

    it('mounts a config whose trustProxy covers the fixed subnet, and is hardened', () => {
      const { services, doc } = load();
      const gatehouse = asMap(services.gatehouse, 'services.gatehouse');
      const mount = (gatehouse.volumes as string[]).find((v) => v.endsWith(':/etc/gatehouse/gatehouse.json:ro'))!;
      const config = JSON.parse(readFileSync(join(DEPLOY, mount.split(':')[0]!), 'utf8'));
      const subnet = asMap(asMap(asMap(doc.networks, 'networks').default, 'default').ipam, 'ipam').config as Yaml[];
      expect(config.trustProxy).toContain(asMap(subnet[0], 'ipam.config[0]').subnet);
      expect(gatehouse.read_only).toBe('true');
      expect(gatehouse.cap_drop).toEqual(['ALL']);
      expect(gatehouse.security_opt).toContain('no-new-privileges:true');
    });
  });
}

// --- systemd unit ---

/** INI sections of a unit file; repeated keys keep every value. */
function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const sections: Record<string, Record<string, string[]>> = {};
  let section: Record<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) {
      section = sections[head[1]!] = {};
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq <= 0) throw new Error(`not a unit line: ${line}`);
    (section[line.slice(0, eq)] ??= []).push(line.slice(eq + 1));
  }
  return sections;
}

describe('examples/deploy/gatehouse.service', () => {
  const unit = parseUnit(readFileSync(join(DEPLOY, 'gatehouse.service'), 'utf8'));
  const service = unit.Service!;
  const one = (key: string) => service[key]?.at(-1);

  it('runs bin/gatehouse.mjs serve as a dedicated user with an EnvironmentFile, restarting on failure', () => {
    expect(one('User')).toBeTruthy();
    expect(['root', '0']).not.toContain(one('User'));
    expect(one('EnvironmentFile')).toMatch(/^\//);
    expect(one('Restart')).toBe('on-failure');
    expect(one('ExecStart')).toMatch(/\/node \S*\/bin\/gatehouse\.mjs serve$/);
    expect(one('ExecStart')).not.toMatch(/npm/);
    expect(unit.Install?.WantedBy).toContain('multi-user.target');
  });

  it('is hardened, and may write only the embedded store directory its env example points at', () => {
    expect(one('NoNewPrivileges')).toBe('true');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('PrivateTmp')).toBe('true');
    expect(one('ProtectHome')).toBe('true');
    expect(one('CapabilityBoundingSet')).toBe('');
    // V8's JIT cannot run with it.
    expect(service.MemoryDenyWriteExecute).toBeUndefined();
    const writable = (service.ReadWritePaths ?? []).flatMap((v) => v.split(/\s+/));
    expect(writable.length).toBeGreaterThan(0);
    const storage = /^GATEHOUSE_STORAGE=(.*)$/m.exec(readFileSync(join(DEPLOY, 'gatehouse.env.example'), 'utf8'))![1]!;
    expect(writable.some((dir) => storage === dir || storage.startsWith(dir + '/'))).toBe(true);
  });
});

const systemdAnalyze = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;

describe('examples/deploy/gatehouse.service with systemd-analyze', () => {
  // systemd ignores a misspelt key with a warning, so a typo in a hardening key would silently weaken the unit.
  it.skipIf(!systemdAnalyze)('has no unknown key and no unparsable value', () => {
    const r = spawnSync('systemd-analyze', ['verify', join(DEPLOY, 'gatehouse.service')], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    const complaints = r.stderr
      .split('\n')
      .filter((l) => /Unknown key|Unknown section|Failed to parse|Invalid|ignoring/i.test(l));
    expect(complaints).toEqual([]);
  });
});

// --- with a Docker engine: build and run the image ---

const docker = spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 15_000 });
const dockerAvailable = docker.status === 0;
if (!dockerAvailable) {
  // Not turned into a failure under CI=true: this kind of machine has no Docker engine (documented exception).
  console.warn('SKIPPING: the Docker image build and run test (no Docker engine: `docker info` failed)');
}

describe('the Docker image (needs a Docker engine)', () => {
  it.skipIf(!dockerAvailable)(
    'builds, starts, answers /health with 200, and runs as a non-root user',
    async () => {
      const tag = `gatehouse-test:${process.pid}-${Date.now()}`;
      const sh = (args: string[], timeout = 60_000) => {
        const r = spawnSync('docker', args, { encoding: 'utf8', timeout });
        if (r.status !== 0) throw new Error(`docker ${args.join(' ')} failed: ${r.stderr}`);
        return r.stdout.trim();
      };
      sh(['build', '-t', tag, ROOT], 15 * 60_000);
      let container: string | undefined;
      try {
        container = sh(['run', '-d', '-p', '127.0.0.1::8080', tag]);
        const port = sh(['port', container, '8080/tcp']).split('\n')[0]!.split(':').pop();
        const up = await eventually(
          async () => (await fetch(`http://127.0.0.1:${port}/health`)).status === 200,
          90_000,
        );
        expect(up, sh(['logs', container])).toBe(true);
        expect(sh(['exec', container, 'id', '-u'])).not.toBe('0');
        // PID 1 is the server itself (CMD), as that user.
        expect(sh(['exec', container, 'sh', '-c', 'stat -c %u /proc/1'])).not.toBe('0');
      } finally {
        if (container) spawnSync('docker', ['rm', '-f', container], { stdio: 'ignore' });
        spawnSync('docker', ['rmi', '-f', tag], { stdio: 'ignore' });
      }
    },
    20 * 60_000,
  );
});

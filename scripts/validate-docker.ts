/**
 * Static check of Dockerfile, .dockerignore and docker-compose.yml (CI has no Docker engine):
 * every file the image copies exists and is not excluded from the build context, the image carries
 * everything `bin/kassa.js` needs at run time, commands name real `kassa` CLI commands or npm
 * scripts, compose services/dependencies/volumes are consistent, environment variables are ones
 * src/config.ts knows and their values pass loadConfig, and no secret is committed.
 *
 *   npx tsx scripts/validate-docker.ts [--root <dir>]     exit 0 when valid, 1 with one line per problem
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse as parseYaml } from 'yaml';

export interface DockerfileInstruction {
  line: number;
  keyword: string;
  args: string;
}

/** Splits a Dockerfile into instructions (comments dropped, `\` continuations joined). */
export function parseDockerfile(text: string): DockerfileInstruction[] {
  const out: DockerfileInstruction[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let raw = lines[i]!;
    if (/^\s*(#|$)/.test(raw)) continue;
    const start = i + 1;
    while (/\\\s*$/.test(raw) && i + 1 < lines.length) {
      raw = raw.replace(/\\\s*$/, ' ');
      i++;
      while (i < lines.length - 1 && /^\s*#/.test(lines[i]!)) i++; // comments inside a continuation
      raw += lines[i]!.trim();
    }
    const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(raw);
    if (m) out.push({ line: start, keyword: m[1]!.toUpperCase(), args: m[2]!.trim() });
  }
  return out;
}

/** `["a","b"]` (exec form) → array; anything else → null (shell form). */
function execForm(args: string): string[] | null {
  if (!args.startsWith('[')) return null;
  try {
    const v = JSON.parse(args) as unknown;
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null;
  } catch {
    return null;
  }
}

/** .dockerignore patterns (simplified: `*`, `**`, leading `/`, `!` exceptions). */
function ignoreMatcher(text: string): (rel: string) => boolean {
  const rules = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const p = (negate ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '');
      const re = new RegExp('^' + p.split('**').map((s) => s.split('*').map((t) => t.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')).join('.*') + '(/.*)?$');
      return { negate, re };
    });
  return (rel) => {
    let ignored = false;
    for (const r of rules) if (r.re.test(rel)) ignored = !r.negate;
    return ignored;
  };
}

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/** Compose-style interpolation against `env`; `${X:?msg}` with X unset yields `<required:X>`. */
function interpolate(value: string, env: Record<string, string>, required: Set<string>): string {
  return value.replace(/\$\$/g, '\u0000').replace(VAR, (_m, name: string | undefined, op: string | undefined, arg: string | undefined, bare: string | undefined) => {
    const key = (name ?? bare)!;
    const v = env[key];
    const unset = v === undefined || (op?.startsWith(':') && v === '');
    if (!unset) return v!;
    if (op === ':-' || op === '-') return arg ?? '';
    if (op === ':?' || op === '?') {
      required.add(key);
      return `<required:${key}>`;
    }
    return '';
  }).replace(/\u0000/g, '$');
}

function interpolateDeep(v: unknown, env: Record<string, string>, required: Set<string>): unknown {
  if (typeof v === 'string') return interpolate(v, env, required);
  if (Array.isArray(v)) return v.map((x) => interpolateDeep(x, env, required));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolateDeep(x, env, required)]));
  return v;
}

/** Environment variable names accepted by src/config.ts (its zod env schema). */
function configVariables(root: string): Set<string> {
  const src = readFileSync(path.join(root, 'src/config.ts'), 'utf8');
  const block = /const envSchema = z\.object\(\{([\s\S]*?)\n\}\);/.exec(src)?.[1] ?? '';
  return new Set([...block.matchAll(/^\s{2}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1]!));
}

/** Files the operator provides at deploy time (mounted, never in git or the image). */
export const OPERATOR_FILES = ['chains.json'];

export interface ValidateOptions {
  root: string;
  /** Override file contents (tests): relative path → text. */
  files?: Record<string, string>;
}

export async function validateDocker(opts: ValidateOptions): Promise<string[]> {
  const root = path.resolve(opts.root);
  const problems: string[] = [];
  const read = (rel: string): string | null => opts.files?.[rel] ?? (existsSync(path.join(root, rel)) ? readFileSync(path.join(root, rel), 'utf8') : null);
  const exists = (rel: string) => existsSync(path.join(root, rel));

  const pkg = JSON.parse(read('package.json') ?? '{}') as { scripts?: Record<string, string>; dependencies?: Record<string, string>; bin?: Record<string, string> };
  const scripts = pkg.scripts ?? {};
  // The real CLI: the command table src/cli/main.ts dispatches to (src/cli/registry.ts).
  const cliCommands = new Set<string>();
  const registryFile = path.join(root, 'src/cli/registry.ts');
  if (!existsSync(registryFile)) problems.push('src/cli/registry.ts (the kassa command table) does not exist');
  else {
    const registry = (await import(pathToFileURL(registryFile).href)) as { COMMANDS?: Record<string, unknown> };
    for (const name of Object.keys(registry.COMMANDS ?? {})) cliCommands.add(name);
  }
  if (cliCommands.size === 0) problems.push('src/cli: no kassa commands found (cannot check commands)');
  const kassaBin = pkg.bin?.kassa ?? 'bin/kassa.js';

  /** Checks a command line: node <bin> <cmd…>, kassa <cmd…>, npm run <script>, npm start. */
  const checkCommand = (where: string, argv: string[]) => {
    const [exe, ...rest] = argv;
    let sub: string[] | null = null;
    if (exe === 'node' && rest[0] && !rest[0].startsWith('-')) {
      if (!exists(rest[0])) problems.push(`${where}: ${rest[0]} does not exist`);
      if (path.normalize(rest[0]) === path.normalize(kassaBin)) sub = rest.slice(1);
    } else if (exe === 'kassa' || (exe === 'npx' && rest[0] === 'kassa')) sub = exe === 'npx' ? rest.slice(1) : rest;
    else if (exe === 'npm') {
      const script = rest[0] === 'run' || rest[0] === 'run-script' ? rest[1] : rest[0] === 'start' ? 'start' : undefined;
      if (!script || !(script in scripts)) problems.push(`${where}: "npm ${rest.join(' ')}" is not an npm script in package.json`);
      else sub = /kassa\.js\s+(.*)$/.exec(scripts[script]!)?.[1]?.split(/\s+/) ?? null;
    } else if (exe !== 'node') problems.push(`${where}: unexpected command "${argv.join(' ')}" (expected node ${kassaBin} …, kassa …, or npm run …)`);
    if (sub) {
      const name = [`${sub[0] ?? ''} ${sub[1] ?? ''}`.trim(), sub[0] ?? ''].find((n) => cliCommands.has(n));
      if (!name) problems.push(`${where}: "${sub.join(' ')}" is not a kassa command (known: ${[...cliCommands].sort().join(', ')})`);
    }
  };

  // ---------- Dockerfile ----------
  const dockerfile = read('Dockerfile');
  const ignored = ignoreMatcher(read('.dockerignore') ?? '');
  const inImage: string[] = []; // relative sources copied into the image
  if (!dockerfile) problems.push('Dockerfile is missing');
  else {
    const ins = parseDockerfile(dockerfile);
    const from = ins.filter((i) => i.keyword === 'FROM');
    if (from.length === 0) problems.push('Dockerfile: no FROM');
    for (const f of from) {
      const image = f.args.split(/\s+/).filter((a) => !a.startsWith('--'))[0] ?? '';
      if (!/:[\w.-]+$/.test(image) || image.endsWith(':latest')) problems.push(`Dockerfile:${f.line}: FROM ${image} must pin a tag`);
    }
    const last = from[from.length - 1];
    if (last && !/^node:20[\w.-]*-bookworm-slim\b/.test(last.args)) problems.push(`Dockerfile:${last.line}: the runtime image should be node:20-bookworm-slim (got ${last.args})`);
    let workdir = '/';
    const copied = new Set<string>();
    let npmCi: DockerfileInstruction | undefined;
    let user: string | null = null;
    for (const i of ins) {
      if (i.keyword === 'WORKDIR') workdir = i.args;
      if (i.keyword === 'USER') user = i.args;
      if (i.keyword === 'COPY' || i.keyword === 'ADD') {
        const parts = execForm(i.args) ?? i.args.split(/\s+/);
        const flags = parts.filter((p) => p.startsWith('--'));
        const paths = parts.filter((p) => !p.startsWith('--'));
        if (flags.some((f) => f.startsWith('--from='))) continue; // from another stage
        if (paths.length < 2) { problems.push(`Dockerfile:${i.line}: ${i.keyword} needs a source and a destination`); continue; }
        for (const src of paths.slice(0, -1)) {
          const rel = path.normalize(src).replace(/\/+$/, '');
          if (/^https?:/.test(src)) { problems.push(`Dockerfile:${i.line}: ${i.keyword} from a URL (${src}) is not allowed`); continue; }
          if (rel.startsWith('..') || path.isAbsolute(rel)) { problems.push(`Dockerfile:${i.line}: COPY source ${src} is outside the build context`); continue; }
          if (rel !== '.' && !exists(rel)) problems.push(`Dockerfile:${i.line}: COPY source ${src} does not exist`);
          else if (rel !== '.' && ignored(rel)) problems.push(`Dockerfile:${i.line}: COPY source ${src} is excluded by .dockerignore`);
          copied.add(rel);
          inImage.push(rel);
        }
      }
      // The build step writes dist/ (what bin/kassa.js runs) inside the image.
      if (i.keyword === 'RUN' && /\b(node scripts\/build\.mjs|npm run build)\b/.test(i.args)) inImage.push('dist');
      if (i.keyword === 'RUN' && /\bnpm (ci|install)\b/.test(i.args)) {
        npmCi = i;
        if (!copied.has('package.json') || !copied.has('package-lock.json')) problems.push(`Dockerfile:${i.line}: copy package.json and package-lock.json before "npm ci"`);
        if (/--omit=dev|--production/.test(i.args)) {
          // bin/kassa.js loads TypeScript through tsx at run time: it must be a runtime dependency.
          if (!pkg.dependencies?.tsx) problems.push(`Dockerfile:${i.line}: npm ci --omit=dev drops tsx, but bin/kassa.js needs it (move tsx to dependencies)`);
        }
      }
    }
    if (!npmCi) problems.push('Dockerfile: no "npm ci" step');
    if (!user || /^(root|0)(:|$)/.test(user)) problems.push('Dockerfile: the image must switch to a non-root USER');
    const hc = ins.find((i) => i.keyword === 'HEALTHCHECK');
    if (!hc || !hc.args.includes('/health')) problems.push('Dockerfile: HEALTHCHECK must call /health');
    const cmd = ins.filter((i) => i.keyword === 'CMD').pop();
    const cmdArgv = cmd ? execForm(cmd.args) : null;
    if (!cmd) problems.push('Dockerfile: no CMD');
    else if (!cmdArgv) problems.push(`Dockerfile:${cmd.line}: CMD must use the exec form (["node", "${kassaBin}", "serve"]) so signals reach node`);
    else checkCommand(`Dockerfile:${cmd.line}: CMD`, cmdArgv);
    const covered = (rel: string) => inImage.some((c) => c === '.' || rel === c || rel.startsWith(c + '/')) && !ignored(rel);
    // What the CLI needs at run time: the entry point, tsconfig (JSX settings for tsx), and every
    // top-level folder that src/, workers/ and bin/ import from.
    const needed = new Set<string>([kassaBin, 'tsconfig.json', 'src/cli/main.ts']);
    for (const dir of ['src', 'workers', 'bin']) {
      if (!covered(dir) && dir !== 'bin') continue;
      for (const file of walk(path.join(root, dir))) {
        if (!/\.(ts|tsx|js)$/.test(file) || /\.test\.tsx?$/.test(file)) continue;
        for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
          const target = path.relative(root, path.resolve(path.dirname(file), m[1]!));
          if (!target.startsWith('..')) needed.add(target.split(path.sep)[0]!);
        }
      }
    }
    for (const rel of needed) if (!covered(rel)) problems.push(`Dockerfile: the image lacks ${rel} (needed by ${kassaBin} at run time)`);
    // With --omit=dev, every package statically imported from the entry point must be a runtime dependency.
    if (npmCi && /--omit=dev|--production/.test(npmCi.args)) {
      for (const [spec, from] of staticPackageImports(root, path.join(root, kassaBin))) {
        if (!pkg.dependencies?.[spec]) problems.push(`Dockerfile: ${from} imports "${spec}", which npm ci --omit=dev does not install (not in dependencies)`);
      }
    }
    if (!ins.some((i) => i.keyword === 'EXPOSE' && i.args.split(/\s+/).includes('3000'))) problems.push('Dockerfile: EXPOSE 3000 is missing');
  }
  for (const f of OPERATOR_FILES) if (!ignored(f)) problems.push(`.dockerignore: add ${f} (operator file with credentials, must never be baked into the image)`);

  // ---------- docker-compose.yml ----------
  const composeText = read('docker-compose.yml');
  if (!composeText) return [...problems, 'docker-compose.yml is missing'];
  let compose: { services?: Record<string, any>; volumes?: Record<string, unknown> };
  try {
    compose = parseYaml(composeText, { merge: true }) as typeof compose;
  } catch (err) {
    return [...problems, `docker-compose.yml: not valid YAML: ${(err as Error).message.split('\n')[0]}`];
  }
  const required = new Set<string>();
  compose = interpolateDeep(compose, {}, required) as typeof compose;
  const services = compose.services ?? {};
  const known = configVariables(root);
  for (const name of ['postgres', 'redis', 'api', 'worker']) if (!services[name]) problems.push(`docker-compose.yml: service "${name}" is missing`);
  if (services.postgres && !/^postgres:15\b/.test(String(services.postgres.image))) problems.push('docker-compose.yml: postgres must use image postgres:15');
  if (services.redis && !/^redis:7\b/.test(String(services.redis.image))) problems.push('docker-compose.yml: redis must use image redis:7');
  const namedVolumes = new Set(Object.keys(compose.volumes ?? {}));
  const images = new Set<string>();
  for (const [name, s] of Object.entries(services)) if (s.build && s.image) images.add(String(s.image));

  for (const [name, s] of Object.entries(services)) {
    const where = `docker-compose.yml: services.${name}`;
    for (const dep of Object.keys(Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((d: string) => [d, 1])) : (s.depends_on ?? {}))) {
      if (!services[dep]) problems.push(`${where}.depends_on: no service "${dep}"`);
    }
    const mounts = new Map<string, string>(); // target → source
    for (const v of s.volumes ?? []) {
      const [source, target] = typeof v === 'string' ? v.split(':') : [v.source, v.target];
      if (!source || !target) { problems.push(`${where}.volumes: cannot read ${JSON.stringify(v)}`); continue; }
      mounts.set(target, source);
      if (/^[./~]/.test(source)) {
        const rel = path.normalize(source);
        if (!exists(rel) && !OPERATOR_FILES.includes(rel)) problems.push(`${where}.volumes: bind source ${source} does not exist`);
        if (typeof v === 'object' && v.bind?.create_host_path !== false && OPERATOR_FILES.includes(rel)) problems.push(`${where}.volumes: set bind.create_host_path: false for ${source} (Docker would create a directory)`);
      } else if (!namedVolumes.has(source)) problems.push(`${where}.volumes: named volume "${source}" is not declared under volumes:`);
    }
    const isKassa = (s.build !== undefined) || images.has(String(s.image));
    if (!isKassa) continue;
    if (s.build !== undefined) {
      const ctx = typeof s.build === 'string' ? s.build : s.build.context ?? '.';
      const df = typeof s.build === 'object' && s.build.dockerfile ? s.build.dockerfile : 'Dockerfile';
      if (!exists(path.join(ctx, df))) problems.push(`${where}.build: ${path.join(ctx, df)} does not exist`);
    }
    if (!Array.isArray(s.command)) problems.push(`${where}.command: use a list (exec form), e.g. ["node", "${kassaBin}", "serve"]`);
    else checkCommand(`${where}.command`, s.command as string[]);
    const env: Record<string, string> = Object.fromEntries(
      Array.isArray(s.environment)
        ? s.environment.map((e: string) => [e.split('=')[0], e.split('=').slice(1).join('=')])
        : Object.entries(s.environment ?? {}).map(([k, v]) => [k, v === null ? '' : String(v)]),
    );
    for (const k of Object.keys(env)) if (!known.has(k)) problems.push(`${where}.environment: ${k} is not a variable src/config.ts reads`);
    if (env.KASSA_ENV !== 'production') problems.push(`${where}.environment: KASSA_ENV must be production`);
    if (!required.has('KASSA_SECRET_KEY') || env.KASSA_SECRET_KEY !== '<required:KASSA_SECRET_KEY>') {
      problems.push(`${where}.environment: KASSA_SECRET_KEY must come from the operator's environment (\${KASSA_SECRET_KEY:?…}), never a committed value`);
    }
    if (env.KASSA_CONFIG && !mounts.has(env.KASSA_CONFIG)) problems.push(`${where}: KASSA_CONFIG=${env.KASSA_CONFIG} is not mounted into the container`);
    // The values must pass the real config loader (secret and chains file stand-ins).
    try {
      const { loadConfig } = (await import(pathToFileURL(path.join(root, 'src/config.ts')).href)) as typeof import('../src/config.ts');
      const probe = { ...env, KASSA_SECRET_KEY: '00'.repeat(32), KASSA_DATA_DIR: path.join(root, '.kassa') };
      delete (probe as Record<string, string>).KASSA_CONFIG;
      const cfg = loadConfig(probe);
      if (/serve/.test((s.command ?? []).join(' '))) {
        if (cfg.host !== '0.0.0.0') problems.push(`${where}.environment: HOST must be 0.0.0.0 in a container (got ${cfg.host})`);
        const published = (s.ports ?? []).map((p: string | { target: number }) => (typeof p === 'string' ? Number(p.split(':').pop()) : Number(p.target)));
        if (!published.includes(cfg.port)) problems.push(`${where}.ports: nothing publishes container port ${cfg.port}`);
        if (!JSON.stringify(s.healthcheck?.test ?? '').includes('/health')) problems.push(`${where}.healthcheck: must call /health`);
      }
    } catch (err) {
      problems.push(`${where}.environment: rejected by src/config.ts: ${(err as Error).message}`);
    }
  }
  // Literal secrets in the compose file.
  if (/kassa_sk_[A-Za-z0-9]{8,}|whsec_[A-Za-z0-9+/]{8,}|\b[0-9a-f]{64}\b|BEGIN [A-Z ]*PRIVATE KEY/.test(composeText)) problems.push('docker-compose.yml: contains what looks like a secret');
  return problems;
}

const BUILTINS = new Set(builtinModules);

/**
 * Packages reached through static imports (`import … from`, `export … from`, not `import type`)
 * starting at `entry`, following relative imports. Returns package name → first importing file.
 */
export function staticPackageImports(root: string, entry: string): Map<string, string> {
  const seen = new Set<string>();
  const packages = new Map<string, string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file) || !existsSync(file)) continue;
    seen.add(file);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?'([^']+)'/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) queue.push(path.resolve(path.dirname(file), spec));
      else if (!spec.startsWith('node:') && !BUILTINS.has(spec)) {
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (!packages.has(name)) packages.set(name, path.relative(root, file));
      }
    }
    // Dynamic imports: bin/kassa.js loads `../src/cli/main.ts`, the CLI loads each command's module.
    for (const m of text.matchAll(/\bimport\('(\.[^']+)'\)/g)) queue.push(path.resolve(path.dirname(file), m[1]!));
  }
  return packages;
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--root');
  const root = i > 0 ? process.argv[i + 1]! : path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
  const problems = await validateDocker({ root });
  for (const p of problems) process.stderr.write(`validate-docker: ${p}\n`);
  if (problems.length === 0) process.stdout.write('validate-docker: Dockerfile, .dockerignore and docker-compose.yml are consistent\n');
  process.exit(problems.length === 0 ? 0 : 1);
}

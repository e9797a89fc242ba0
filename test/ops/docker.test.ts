/**
 * The static Docker check (scripts/validate-docker.ts) passes on the repository and fails — with a
 * line naming the problem — on deliberately broken copies. No Docker engine needed.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDockerfile, validateDocker } from '../../scripts/validate-docker.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const compose = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
const temps: string[] = [];
afterAll(() => { for (const t of temps) rmSync(t, { recursive: true, force: true }); });

async function cli(root?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'scripts/validate-docker.ts', ...(root ? ['--root', root] : [])], { cwd: ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function movePromClientToDev(): string {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  pkg.devDependencies['prom-client'] = pkg.dependencies['prom-client']!;
  delete pkg.dependencies['prom-client'];
  return JSON.stringify(pkg);
}

/** A copy of the repository's Docker inputs (sources symlinked) with `edits` applied. */
function brokenCopy(edits: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'kassa-docker-'));
  temps.push(dir);
  for (const d of ['bin', 'src', 'workers', 'node_modules']) symlinkSync(path.join(ROOT, d), path.join(dir, d));
  for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'Dockerfile', 'docker-compose.yml', '.dockerignore']) copyFileSync(path.join(ROOT, f), path.join(dir, f));
  for (const [f, text] of Object.entries(edits)) writeFileSync(path.join(dir, f), text);
  return dir;
}

describe('scripts/validate-docker.ts', () => {
  it('passes on the repository (CLI exit 0)', async () => {
    const r = await cli();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('consistent');
  });

  it('fails on a broken copy: a COPY source that does not exist (CLI exit 1, one line per problem)', async () => {
    const dir = brokenCopy({ Dockerfile: dockerfile.replace('COPY workers ./workers', 'COPY worker ./workers') });
    const r = await cli(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('COPY source worker does not exist');
    expect(r.stderr).toContain('the image lacks workers');
  });

  it('fails on a compose command that is not a kassa command or npm script', async () => {
    const dir = brokenCopy({
      'docker-compose.yml': compose
        .replace('command: ["node", "bin/kassa.js", "worker"]', 'command: ["node", "bin/kassa.js", "workers"]')
        .replace('command: ["node", "bin/kassa.js", "migrate"]', 'command: ["npm", "run", "db:migrate"]'),
    });
    const r = await cli(dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('services.worker.command: "workers" is not a kassa command');
    expect(r.stderr).toContain('services.migrate.command: "npm run db:migrate" is not an npm script');
  });

  it.each([
    ['CMD with an unknown command', { Dockerfile: dockerfile.replace('"serve"]', '"start"]') }, 'CMD: "start" is not a kassa command'],
    ['running as root', { Dockerfile: dockerfile.replace('USER node', 'USER root') }, 'non-root USER'],
    ['no HEALTHCHECK', { Dockerfile: dockerfile.replace(/HEALTHCHECK[\s\S]*?\n\n/, '\n') }, 'HEALTHCHECK must call /health'],
    ['src excluded from the context', { '.dockerignore': 'src\n' }, 'COPY source src is excluded by .dockerignore'],
    ['a dependency on a missing service', { 'docker-compose.yml': compose.replace('migrate:\n        condition: service_completed_successfully', 'migrator:\n        condition: service_completed_successfully') }, 'depends_on: no service "migrator"'],
    ['an unknown environment variable', { 'docker-compose.yml': compose.replace('REDIS_URL: redis://redis:6379', 'REDIS_URL: redis://redis:6379\n  REDIS_HOST: redis') }, 'REDIS_HOST is not a variable src/config.ts reads'],
    ['a value src/config.ts rejects', { 'docker-compose.yml': compose.replace('REDIS_URL: redis://redis:6379', 'REDIS_URL: http://redis:6379') }, 'REDIS_URL is invalid'],
    ['a committed KASSA_SECRET_KEY', { 'docker-compose.yml': compose.replace(/KASSA_SECRET_KEY: .*/, `KASSA_SECRET_KEY: ${'ab'.repeat(32)}`) }, 'contains what looks like a secret'],
    ['an undeclared named volume', { 'docker-compose.yml': compose.replace('- redisdata:/data', '- redis-data:/data') }, 'named volume "redis-data" is not declared'],
    ['api listening on loopback', { 'docker-compose.yml': compose.replace('HOST: 0.0.0.0', 'HOST: 127.0.0.1') }, 'HOST must be 0.0.0.0'],
    ['a runtime import that --omit=dev would drop', { 'package.json': movePromClientToDev() }, 'src/metrics/index.ts imports "prom-client", which npm ci --omit=dev does not install'],
    ['chains.json not excluded from the image', { '.dockerignore': readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').replace('\nchains.json\n', '\n') }, 'add chains.json'],
  ])('reports %s', async (_name, files, message) => {
    const problems = await validateDocker({ root: ROOT, files });
    expect(problems.join('\n')).toContain(message);
  });

  it('parseDockerfile joins continuation lines and drops comments', () => {
    const ins = parseDockerfile('# c\nFROM node:20-bookworm-slim\nRUN a \\\n  # inner comment\n  && b\nCMD ["node"]\n');
    expect(ins.map((i) => [i.keyword, i.args])).toEqual([['FROM', 'node:20-bookworm-slim'], ['RUN', 'a  && b'], ['CMD', '["node"]']]);
  });
});

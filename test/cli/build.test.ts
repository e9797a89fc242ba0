/**
 * The build (scripts/build.mjs → dist/) and how bin/kassa.js chooses between dist/ and the sources,
 * on a copy of the repository's code in a temp folder (node_modules symlinked):
 * - dist/ runs only while it was built from exactly the current sources: an edited, added or
 *   deleted file under src/ (an SQL migration included) makes bin/kassa.js run the sources instead;
 * - `kassa help` and `kassa <command> --help` load no command module; `kassa serve` runs without
 *   the worker modules, and finds the migrations and static files from dist/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { createTestDatabase, REDIS_URL } from '../support/db.ts';
import { SHARED_FILES } from '../../bin/source-hash.js';

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '../..');
let dir: string;
let dist: string;

async function kassa(args: string[], env: Record<string, string | undefined> = {}) {
  try {
    const r = await run(process.execPath, [path.join(dir, 'bin/kassa.js'), ...args], {
      cwd: dir, timeout: 60_000, env: { PATH: process.env.PATH, HOME: process.env.HOME, KASSA_DATA_DIR: path.join(dir, '.kassa'), ...env } as NodeJS.ProcessEnv,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const MIGRATE_SUMMARY = 'create the database if needed and apply migrations';

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'kassa-build-'));
  for (const d of ['bin', 'src', 'workers']) cpSync(path.join(REPO, d), path.join(dir, d), { recursive: true });
  for (const f of SHARED_FILES) cpSync(path.join(REPO, f), path.join(dir, f), { recursive: true });
  mkdirSync(path.join(dir, 'scripts'));
  copyFileSync(path.join(REPO, 'scripts/build.mjs'), path.join(dir, 'scripts/build.mjs'));
  for (const f of ['package.json', 'tsconfig.json']) copyFileSync(path.join(REPO, f), path.join(dir, f));
  symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const b = await run(process.execPath, ['scripts/build.mjs'], { cwd: dir, timeout: 180_000 });
  expect(b.stderr).toMatch(/^kassa build: \d+ modules and \d+ files → dist\/ in \d+ ms\n$/);
  dist = path.join(dir, 'dist');
  // A mark only the built code carries: which of the two runs is visible in `kassa help`.
  const file = readdirSync(dist).find((f) => f.endsWith('.js') && readFileSync(path.join(dist, f), 'utf8').includes(MIGRATE_SUMMARY))!;
  writeFileSync(path.join(dist, file), readFileSync(path.join(dist, file), 'utf8').replace(MIGRATE_SUMMARY, `DIST-MARK ${MIGRATE_SUMMARY}`));
}, 240_000);
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('bin/kassa.js runs dist/ only when it matches the sources', () => {
  const runsDist = async () => {
    const r = await kassa(['help']);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.includes('DIST-MARK');
  };

  it('runs dist/ when fresh; the sources after any change to them, and dist/ again once they match', async () => {
    expect(await runsDist()).toBe(true);
    expect(readdirSync(path.join(dist, 'src/db/migrations')).filter((f) => f.endsWith('.sql')).length).toBe(readdirSync(path.join(dir, 'src/db/migrations')).filter((f) => f.endsWith('.sql')).length);

    // An edited source file (same length, so no size shortcut could hide it).
    const registry = path.join(dir, 'src/cli/registry.ts');
    const original = readFileSync(registry, 'utf8');
    writeFileSync(registry, original.replace(MIGRATE_SUMMARY, MIGRATE_SUMMARY.replace('create', 'CREATE')));
    const edited = await kassa(['help']);
    expect(edited.stdout).toContain('CREATE the database if needed');
    expect(edited.stdout).not.toContain('DIST-MARK');
    writeFileSync(registry, original);
    expect(await runsDist()).toBe(true);

    // A new file, then a deleted one.
    writeFileSync(path.join(dir, 'src/cli/extra.ts'), 'export const x = 1;\n');
    expect(await runsDist()).toBe(false);
    unlinkSync(path.join(dir, 'src/cli/extra.ts'));
    expect(await runsDist()).toBe(true);
    const worker = path.join(dir, 'workers/webhooks.ts');
    const workerText = readFileSync(worker, 'utf8');
    unlinkSync(worker);
    expect(await runsDist()).toBe(false);
    writeFileSync(worker, workerText);

    // A migration (not TypeScript) counts too.
    const sql = path.join(dir, 'src/db/migrations', readdirSync(path.join(dir, 'src/db/migrations')).sort()[0]!);
    const sqlText = readFileSync(sql, 'utf8');
    appendFileSync(sql, '-- edited\n');
    expect(await runsDist()).toBe(false);
    writeFileSync(sql, sqlText);
    expect(await runsDist()).toBe(true);

    // KASSA_FROM_SOURCE=1 always runs the sources.
    expect((await kassa(['help'], { KASSA_FROM_SOURCE: '1' })).stdout).not.toContain('DIST-MARK');
  }, 120_000);
});

describe('lazy loading from dist/', () => {
  /** Moves dist/ modules whose names start with one of `prefixes` aside while `fn` runs. */
  async function without<T>(prefixes: string[], fn: () => Promise<T>): Promise<T> {
    const aside = path.join(dir, 'aside');
    mkdirSync(aside, { recursive: true });
    const moved = readdirSync(dist).filter((f) => prefixes.some((p) => f.startsWith(`${p}-`)) && f.endsWith('.js'));
    expect(moved.length).toBeGreaterThanOrEqual(prefixes.length);
    for (const f of moved) renameSync(path.join(dist, f), path.join(aside, f));
    try {
      return await fn();
    } finally {
      for (const f of moved) renameSync(path.join(aside, f), path.join(dist, f));
    }
  }

  it('kassa help and --help load no command module', async () => {
    const modules = ['commands', 'processes', 'users', 'sandbox', 'dev', 'devnet', 'evm', 'chains'];
    await without(modules, async () => {
      const help = await kassa(['help']);
      expect(help).toMatchObject({ code: 0, stderr: '' });
      expect(help.stdout).toContain('DIST-MARK');
      expect(await kassa(['merchants', 'create', '--help'])).toMatchObject({ code: 0, stderr: '' });
      expect(await kassa(['sandbox', 'pay', '--help'])).toMatchObject({ code: 0, stderr: '' });
      // A command that runs needs its module: proof that the modules are really gone meanwhile.
      const list = await kassa(['merchants', 'list']);
      expect(list.code).toBe(1);
      expect(list.stderr).toMatch(/Cannot find module .*commands-/);
    });
  }, 60_000);

  it('kassa serve runs without the worker modules and serves the migrations and static files from dist/', async () => {
    const db = await createTestDatabase();
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    try {
      await without(['processors', 'runner'], async () => {
        const child = spawn(process.execPath, [path.join(dir, 'bin/kassa.js'), 'serve'], {
          cwd: dir,
          env: { PATH: process.env.PATH, DATABASE_URL: db.url, REDIS_URL, PORT: String(port), LOG_LEVEL: 'warn', KASSA_DATA_DIR: path.join(dir, '.kassa'), KASSA_QUEUE_PREFIX: `{build-test-${port}}` },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (d) => (stderr += d));
        try {
          let health = 0;
          for (let i = 0; i < 300 && health === 0; i++) {
            if (child.exitCode !== null) throw new Error(`kassa serve exited ${child.exitCode}: ${stderr}`);
            health = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status, () => 0);
            if (health === 0) await new Promise((r) => setTimeout(r, 100));
          }
          expect(health).toBeGreaterThan(0);
          const js = await fetch(`http://127.0.0.1:${port}/pay/static/checkout.js`);
          expect(js.status).toBe(200);
          expect(await js.text()).toBe(readFileSync(path.join(dir, 'src/checkout/checkout.client.js'), 'utf8'));
          const css = await fetch(`http://127.0.0.1:${port}/dashboard/static/dashboard.css`);
          expect(await css.text()).toBe(readFileSync(path.join(dir, 'src/dashboard/dashboard.css'), 'utf8'));
          const sql = postgres(db.url, { max: 1, onnotice: () => {} });
          const applied = await sql`select name from schema_migrations order by version`;
          await sql.end();
          expect(applied.map((r) => `${r.name}.sql`)).toEqual(readdirSync(path.join(dir, 'src/db/migrations')).filter((f) => f.endsWith('.sql')).sort());
        } finally {
          child.kill('SIGTERM');
          await new Promise((r) => child.once('exit', r));
        }
      });
    } finally {
      await db.drop();
    }
  }, 120_000);
});

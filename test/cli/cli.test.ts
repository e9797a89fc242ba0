import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createTestDatabase } from '../support/db.ts';
import { loadConfig } from '../../src/config.ts';
import { startApiServer, type RunningServer } from '../../src/server.ts';
import { SCOPES } from '../../src/merchants/scopes.ts';

const run = promisify(execFile);
const BIN = path.resolve('bin/kassa.js');
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let env: Record<string, string>;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.drop(); // the CLI must create it itself
  env = {
    ...(process.env as Record<string, string>),
    DATABASE_URL: db.url,
    KASSA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'kassa-cli-')),
    LOG_LEVEL: 'warn',
  };
});
afterAll(async () => db?.drop());

async function kassa(args: string[], extraEnv: Record<string, string> = {}) {
  try {
    const r = await run('node', [BIN, ...args], { env: { ...env, ...extraEnv } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The one line a database command prints on stderr (no sandbox runs in this data folder). */
const usingLine = () => `kassa: using database ${db.name} on 127.0.0.1:5432 (DATABASE_URL)\n`;

describe('kassa CLI', () => {
  let server: RunningServer | undefined;
  afterAll(async () => server?.close());

  it('merchants create --json prints one JSON object with the merchant and a first key that works', async () => {
    const r = await kassa(['merchants', 'create', '--name', 'Shop', '--json']);
    expect(r).toMatchObject({ code: 0, stderr: usingLine() });
    const out = JSON.parse(r.stdout);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(out.merchant).toMatchObject({ id: expect.stringMatching(/^mer_/), name: 'Shop', object: 'merchant' });
    expect(out.api_key.secret).toMatch(/^kassa_sk_/);
    expect([...out.api_key.scopes].sort()).toEqual([...SCOPES].sort()); // a merchant's first key has every scope

    server = await startApiServer(loadConfig({ ...env, PORT: '0', LOG_LEVEL: 'silent' }));
    const res = await fetch(`${server.url}/v1/merchant`, { headers: { authorization: `Bearer ${out.api_key.secret}` } });
    expect(res.status).toBe(200);
    expect((await res.json()).id).toBe(out.merchant.id);

    const ro = await kassa(['api-keys', 'create', '--merchant', out.merchant.id, '--scopes', 'invoices:read,reports:read', '--json']);
    expect(ro).toMatchObject({ code: 0, stderr: usingLine() });
    const roKey = JSON.parse(ro.stdout).api_key;
    expect(roKey.scopes).toEqual(['invoices:read', 'reports:read']);
    const patch = await fetch(`${server.url}/v1/merchant`, {
      method: 'PATCH', headers: { authorization: `Bearer ${roKey.secret}`, 'content-type': 'application/json' }, body: '{"name":"x"}',
    });
    expect(patch.status).toBe(403);

    const revoke = await kassa(['api-keys', 'revoke', '--merchant', out.merchant.id, '--key', roKey.id]);
    expect(revoke).toMatchObject({ code: 0, stderr: usingLine() });
    const after = await fetch(`${server.url}/v1/merchant`, { headers: { authorization: `Bearer ${roKey.secret}` } });
    expect(after.status).toBe(401);
  }, 180_000);

  it('human output is readable', async () => {
    const r = await kassa(['merchants', 'create', '--name', 'Human']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^merchant mer_\w+ "Human" created\nAPI key key_\w+ .*\nsecret: kassa_sk_\w+\n/);
  }, 120_000);

  it.each([
    [['merchants', 'create'], 2, /^kassa: --name is required\n$/],
    [['merchants', 'frobnicate'], 2, /^kassa: unknown command "merchants frobnicate"/],
    [['api-keys', 'create', '--merchant', 'mer_x', '--scopes', 'everything'], 2, /--scopes must be a comma-separated list/],
    [['api-keys', 'create', '--merchant', 'mer_nope', '--scopes', 'invoices:read'], 1, /^kassa: resource_missing: No such merchant: 'mer_nope'/],
    [['frobnicate'], 2, /unknown command "frobnicate"/],
    [['merchants', 'create', '--name', 'x', '--bogus'], 2, /Unknown option '--bogus'/],
  ])('kassa %j fails with a one-line message', async (args, code, re) => {
    const r = await kassa(args);
    expect(r.code).toBe(code);
    // A database command first says which database it uses; then one line for the error.
    const lines = r.stderr.trim().split('\n').filter((l) => !l.startsWith('kassa: using database '));
    expect(lines).toHaveLength(1);
    expect(lines[0] + '\n').toMatch(re);
  }, 120_000);

  it('a bad configuration value stops with one line naming the variable', async () => {
    const r = await kassa(['migrate'], { PORT: 'nope' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('kassa: configuration error: PORT is invalid ("nope"): Invalid input: expected number, received NaN\n');
  });
});

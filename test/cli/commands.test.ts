/**
 * The CLI as an operator meets it: `--help` on every command, the list commands (the same JSON
 * objects as the API), read-only commands that never create a database, and commands that follow
 * a running sandbox's settings (its runtime file) unless the environment says otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { createTestDatabase, PG_SERVER } from '../support/db.ts';
import { loadConfig } from '../../src/config.ts';
import { startApiServer, type RunningServer } from '../../src/server.ts';
import { COMMANDS } from '../../src/cli/registry.ts';

const run = promisify(execFile);
const BIN = path.resolve('bin/kassa.js');

async function kassa(args: string[], env: Record<string, string | undefined>) {
  try {
    const r = await run(process.execPath, [BIN, ...args], { env: env as NodeJS.ProcessEnv, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function databaseExists(name: string): Promise<boolean> {
  const admin = postgres(`${PG_SERVER}/postgres`, { max: 1, onnotice: () => {} });
  try {
    return (await admin`select 1 from pg_database where datname = ${name}`).length > 0;
  } finally {
    await admin.end();
  }
}

/** The environment without any Kassa variable, plus `extra`. */
function cleanEnv(extra: Record<string, string>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn', ...extra };
  return env;
}

describe('kassa <command> --help', () => {
  it('every command prints its usage and exits 0, without running it', async () => {
    const names = Object.keys(COMMANDS);
    expect(names).toEqual(expect.arrayContaining(['merchants list', 'users list', 'api-keys list', 'sandbox test-key']));
    // No database is reachable here: a command that ran instead of printing help would fail.
    const env = cleanEnv({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nope', KASSA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'kassa-help-')) });
    for (let i = 0; i < names.length; i += 6) {
      const batch = names.slice(i, i + 6);
      const results = await Promise.all(batch.map((n) => kassa([...n.split(' '), '--help'], env)));
      batch.forEach((n, j) => {
        const r = results[j]!;
        expect({ n, code: r.code, stderr: r.stderr }).toEqual({ n, code: 0, stderr: '' });
        expect(r.stdout).toMatch(new RegExp(`^Usage: kassa ${n}\\b.*\\n\\n\\S`));
      });
    }
  }, 120_000);

  it('kassa merchants create --help shows the options; kassa help lists the list commands', async () => {
    const env = cleanEnv({});
    const r = await kassa(['merchants', 'create', '--help'], env);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain('Usage: kassa merchants create --name <name> [--json]');
    const h = await kassa(['help'], env);
    for (const n of ['merchants list', 'users list --merchant <id>', 'api-keys list --merchant <id>']) expect(h.stdout).toContain(n);
  }, 120_000);
});

describe('kassa chains presets', () => {
  it('lists every built-in EVM preset without a database or configuration', async () => {
    const env = cleanEnv({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nope' });
    const r = await kassa(['chains', 'presets', '--json'], env);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const list = JSON.parse(r.stdout) as { data: { key: string; name: string; chain_id: number; native_symbol: string }[] };
    expect(list.data.map((p) => [p.key, p.name, p.chain_id, p.native_symbol])).toEqual([
      ['ethereum', 'Ethereum', 1, 'ETH'], ['base', 'Base', 8453, 'ETH'], ['arbitrum', 'Arbitrum One', 42161, 'ETH'],
      ['optimism', 'OP Mainnet', 10, 'ETH'], ['polygon', 'Polygon PoS', 137, 'POL'], ['sepolia', 'Sepolia', 11155111, 'ETH'],
      ['base-sepolia', 'Base Sepolia', 84532, 'ETH'], ['arbitrum-sepolia', 'Arbitrum Sepolia', 421614, 'ETH'],
      ['optimism-sepolia', 'OP Sepolia', 11155420, 'ETH'], ['polygon-amoy', 'Polygon Amoy', 80002, 'POL'],
    ]);
    const human = await kassa(['chains', 'presets'], env);
    expect(human.stdout).toContain('base              Base, chain id 8453, ETH, blocks every 2 s');
    expect(human.stdout).toContain('USDC 0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913 (6 decimals)');
  }, 60_000);
});

describe('list commands and read-only commands', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let env: Record<string, string | undefined>;
  let server: RunningServer;

  beforeAll(async () => {
    db = await createTestDatabase();
    env = cleanEnv({ DATABASE_URL: db.url, KASSA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'kassa-cli-lists-')) });
  });
  afterAll(async () => {
    await server?.close();
    await db?.drop();
  });

  it('merchants list, api-keys list and users list print the API objects (--json) and a table', async () => {
    const created = JSON.parse((await kassa(['merchants', 'create', '--name', 'Listed Shop', '--json'], env)).stdout);
    const merchantId = created.merchant.id as string;
    await kassa(['api-keys', 'create', '--merchant', merchantId, '--scopes', 'invoices:read', '--name', 'ro', '--json'], env);
    const user = await kassa(['users', 'create', '--merchant', merchantId, '--email', 'ann@example.com', '--role', 'finance', '--json'], env);
    expect(user.code, user.stderr).toBe(0);

    server = await startApiServer(loadConfig({ ...env, PORT: '0', LOG_LEVEL: 'silent' }));
    const auth = { authorization: `Bearer ${created.api_key.secret}` };
    const apiMerchant = await (await fetch(`${server.url}/v1/merchant`, { headers: auth })).json();
    const apiKeys = await (await fetch(`${server.url}/v1/api_keys`, { headers: auth })).json();

    const ml = await kassa(['merchants', 'list', '--json'], env);
    expect(ml.code, ml.stderr).toBe(0);
    expect(JSON.parse(ml.stdout).data).toContainEqual(apiMerchant);

    const kl = await kassa(['api-keys', 'list', '--merchant', merchantId, '--json'], env);
    expect(kl.code, kl.stderr).toBe(0);
    const keys = JSON.parse(kl.stdout);
    // The list read after the API call: last_used_at of the initial key is set in both.
    expect(keys.data).toEqual(apiKeys.data);
    expect(keys.data.map((k: { name: string }) => k.name).sort()).toEqual(['initial key', 'ro']);
    expect(kl.stdout).not.toContain('kassa_sk_' + created.api_key.secret.slice(9, 30));

    const ul = await kassa(['users', 'list', '--merchant', merchantId, '--json'], env);
    expect(ul.code, ul.stderr).toBe(0);
    expect(JSON.parse(ul.stdout).data).toEqual([
      expect.objectContaining({ object: 'user', email: 'ann@example.com', role: 'finance', status: 'invited', two_factor: false, last_login_at: null }),
    ]);

    const table = await kassa(['merchants', 'list'], env);
    expect(table.stdout).toMatch(new RegExp(`^ID +NAME +CREATED\\n(.*\\n)*${merchantId} +Listed Shop +\\d{4}-`));
    const other = await kassa(['api-keys', 'list', '--merchant', 'mer_nope'], env);
    expect(other).toMatchObject({ code: 1 });
    expect(other.stderr).toMatch(/resource_missing: No such merchant: 'mer_nope'/);
  }, 300_000);

  it.each([
    [['merchants', 'list']],
    [['api-keys', 'list', '--merchant', 'mer_x']],
    [['users', 'list', '--merchant', 'mer_x']],
    [['reconcile', '--merchant', 'mer_x', '--from', '2026-01-01', '--to', '2026-02-01']],
  ])('kassa %j never creates a missing database: a clear error instead', async (args) => {
    const name = `kassa_test_missing_${Math.random().toString(36).slice(2, 10)}`;
    const r = await kassa(args, cleanEnv({ DATABASE_URL: `${PG_SERVER}/${name}`, KASSA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'kassa-cli-ro-')) }));
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `kassa: using database ${name} on 127.0.0.1:5432 (DATABASE_URL)\n` +
        `kassa: database_missing: database ${name} (${PG_SERVER}/${name}) does not exist. Run "kassa migrate" to create it, start the sandbox ("npm run dev"), or set DATABASE_URL\n`,
    );
    expect(await databaseExists(name)).toBe(false);
  }, 120_000);

  it('an empty database is not migrated by a read-only command', async () => {
    const empty = await createTestDatabase();
    try {
      const admin = postgres(empty.url, { max: 1, onnotice: () => {} });
      await admin.unsafe('drop table if exists schema_migrations cascade');
      const tablesBefore = (await admin`select count(*)::int as n from pg_tables where schemaname = 'public'`)[0]!.n;
      await admin.end();
      const r = await kassa(['merchants', 'list'], cleanEnv({ DATABASE_URL: empty.url, KASSA_DATA_DIR: mkdtempSync(path.join(tmpdir(), 'kassa-cli-ro-')) }));
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/database_not_migrated: .* has no Kassa tables\. Run "kassa migrate" first/);
      const check = postgres(empty.url, { max: 1, onnotice: () => {} });
      expect((await check`select count(*)::int as n from pg_tables where schemaname = 'public'`)[0]!.n).toBe(tablesBefore);
      await check.end();
    } finally {
      await empty.drop();
    }
  }, 120_000);
});

describe('the CLI follows a running sandbox', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let dataDir: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    dataDir = mkdtempSync(path.join(tmpdir(), 'kassa-cli-follow-'));
    // The runtime file `npm run dev` writes; pid: this (live) test process stands in for the sandbox.
    mkdirSync(path.join(dataDir, 'sandbox'), { recursive: true });
    writeFileSync(
      path.join(dataDir, 'sandbox', 'runtime.json'),
      JSON.stringify({ pid: process.pid, started_at: new Date().toISOString(), api_url: 'http://127.0.0.1:3611', public_url: 'http://localhost:3611', database_url: db.url, redis_url: 'redis://127.0.0.1:6379' }),
    );
  });
  afterAll(async () => db?.drop());

  it('uses the sandbox database and API URL when the environment sets none, and says so', async () => {
    const env = cleanEnv({ KASSA_DATA_DIR: dataDir });
    const m = await kassa(['merchants', 'create', '--name', 'Second terminal', '--json'], env);
    expect(m.stderr).toBe(`kassa: using sandbox (pid ${process.pid}, API http://127.0.0.1:3611): database ${db.name} on 127.0.0.1:5432\n`);
    expect(m.code).toBe(0);
    const merchantId = JSON.parse(m.stdout).merchant.id as string;
    const check = postgres(db.url, { max: 1, onnotice: () => {} });
    expect((await check`select name from merchants where id = ${merchantId}`)[0]?.name).toBe('Second terminal');
    await check.end();

    // The setup link points at the sandbox's API (its port), not the default 3000.
    const u = await kassa(['users', 'create', '--merchant', merchantId, '--email', 'bo@example.com', '--role', 'owner', '--json'], env);
    expect(u.code, u.stderr).toBe(0);
    expect(JSON.parse(u.stdout).setup_url).toMatch(/^http:\/\/localhost:3611\/dashboard\//);
  }, 180_000);

  it('the environment wins over the sandbox (and the line says both)', async () => {
    const other = await createTestDatabase();
    try {
      const otherEnv = cleanEnv({ KASSA_DATA_DIR: dataDir, DATABASE_URL: other.url });
      expect((await kassa(['migrate'], otherEnv)).code).toBe(0);
      const r = await kassa(['merchants', 'list', '--json'], otherEnv);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).data).toEqual([]);
      expect(r.stderr).toBe(`kassa: using database ${other.name} on 127.0.0.1:5432 (DATABASE_URL; the running sandbox, pid ${process.pid}, uses ${db.name} on 127.0.0.1:5432)\n`);
    } finally {
      await other.drop();
    }
  }, 120_000);

  it('a runtime file of a stopped sandbox is ignored', async () => {
    const stopped = mkdtempSync(path.join(tmpdir(), 'kassa-cli-stopped-'));
    mkdirSync(path.join(stopped, 'sandbox'));
    writeFileSync(path.join(stopped, 'sandbox', 'runtime.json'), JSON.stringify({ pid: 2 ** 22 + 12345, api_url: 'http://127.0.0.1:3611', database_url: db.url }));
    const name = `kassa_test_missing_${Math.random().toString(36).slice(2, 10)}`;
    const r = await kassa(['merchants', 'list'], cleanEnv({ KASSA_DATA_DIR: stopped, DATABASE_URL: `${PG_SERVER}/${name}` }));
    expect(r.stderr.split('\n')[0]).toBe(`kassa: using database ${name} on 127.0.0.1:5432 (DATABASE_URL)`);
  }, 120_000);
});

describe('kassa sandbox test-key', () => {
  it('prints a test key Kassa accepts for regtest, and refuses mainnet', async () => {
    const env = cleanEnv({});
    const r = await kassa(['sandbox', 'test-key', '--json'], env);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const k = JSON.parse(r.stdout);
    expect(k).toMatchObject({ network: 'regtest', address_type: 'p2wpkh', xpub: expect.stringMatching(/^tpub/), descriptor: expect.stringMatching(/^wpkh\(\[[0-9a-f]{8}\/84h\/1h\/0h\]tpub\w+\/0\/\*\)#[a-z0-9]{8}$/) });
    expect(k.tprv).toBeUndefined();
    expect(k.first_addresses.map((a: { address: string }) => a.address)).toEqual([expect.stringMatching(/^bcrt1q/), expect.stringMatching(/^bcrt1q/), expect.stringMatching(/^bcrt1q/)]);
    // Kassa's own parser accepts it and derives the same addresses.
    const { parseBitcoinKeySource } = await import('../../src/chains/bitcoin/descriptor.ts');
    const { deriveAddresses } = await import('../../src/chains/bitcoin/derive.ts');
    const source = parseBitcoinKeySource({ xpub: k.xpub, address_type: 'p2wpkh' }, 'regtest');
    expect(deriveAddresses(source, 0, 3).map((a) => a.address)).toEqual(k.first_addresses.map((a: { address: string }) => a.address));
    const again = JSON.parse((await kassa(['sandbox', 'test-key', '--json', '--network', 'testnet', '--private'], env)).stdout);
    expect(again.xpub).not.toBe(k.xpub);
    expect(again.first_addresses[0].address).toMatch(/^tb1q/);
    expect(again.tprv).toMatch(/^tprv/);

    const main = await kassa(['sandbox', 'test-key', '--network', 'mainnet'], env);
    expect(main.code).toBe(2);
    expect(main.stdout).toBe('');
    expect(main.stderr).toMatch(/never makes a key for mainnet/);
  }, 180_000);
});

/**
 * The one-command sandbox, end to end, the way a developer meets it:
 * - a clean clone in a temp folder: `git clone --quiet <this checkout> <tmp>`, i.e. its HEAD.
 *   UNCOMMITTED CHANGES ARE NOT TESTED HERE (intended: this is what someone cloning the repository
 *   gets); commit first to test them. `node_modules` is a symlink to this checkout's, instead of
 *   `npm ci`, to keep CI time sane, then `npm run build` (what `npm ci` runs as `prepare`);
 * - a second terminal with no environment: `kassa merchants create` uses the sandbox's database,
 *   and `kassa sandbox pay` pays that merchant's invoice (with a `kassa sandbox test-key` xpub);
 * - `npm run dev` there, with its own database (a random name the sandbox creates), API port,
 *   chain ports and queue prefix;
 * - /health 200 (PostgreSQL, Redis and both chain watchers), an invoice created with the printed
 *   demo key, paid with `kassa sandbox pay`, a block mined with `kassa sandbox mine`, the invoice
 *   settled and `invoice.settled` verified by the built-in webhook receiver (its log);
 * - every named scenario (`kassa sandbox scenario <name> --json`) with its state path (and, for
 *   `overpaid-refund` and `partial-refund`, the refund's), plus `paid` and `reorg` with
 *   `--method ETH-ethereum` and `partial-refund` with `--method USDC-ethereum`, and `kassa sandbox reorg --chain ethereum --depth 2`
 *   (a hardhat snapshot revert) replacing exactly 2 blocks with 3;
 * - SIGINT (a terminal's Ctrl-C reaches the whole process group) stops everything: no process of
 *   the group is left.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { PG_SERVER, REDIS_URL } from '../support/db.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('npm run dev (sandbox) from a clean clone', () => {
  let dir: string;
  let dev: ChildProcess;
  let output = '';
  let env: NodeJS.ProcessEnv;
  let apiUrl: string;
  let apiKey: string;
  const dbName = `kassa_sandbox_${Math.random().toString(36).slice(2, 10)}`;

  const kassa = async (...args: string[]) => {
    try {
      const { stdout } = await run(process.execPath, ['bin/kassa.js', ...args], { cwd: dir, env, timeout: 90_000 });
      return stdout;
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- npm run dev output (last 4000 chars) ---\n${output.slice(-4000)}`);
    }
  };
  const api = async <T>(method: string, p: string, body?: unknown): Promise<T> => {
    const res = await fetch(`${apiUrl}${p}`, {
      method,
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    expect(res.status, await res.clone().text()).toBeLessThan(300);
    return (await res.json()) as T;
  };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'kassa-sandbox-clone-'));
    await run('git', ['clone', '--quiet', REPO, dir], { timeout: 120_000 });
    symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    // What `npm ci` does after installing (the `prepare` script): the sandbox runs the build in dist/.
    await run('npm', ['run', 'build'], { cwd: dir, timeout: 180_000 });

    const port = await freePort();
    apiUrl = `http://127.0.0.1:${port}`;
    env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: `${PG_SERVER}/${dbName}`,
      REDIS_URL,
      PORT: String(port),
      KASSA_QUEUE_PREFIX: `{sbx_${dbName.slice(-8)}}`,
      LOG_LEVEL: 'info',
    };
    dev = spawn('npm', ['run', 'dev', '--', '--bitcoin-port', '0', '--evm-port', '0', '--webhook-port', '0'], {
      cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    dev.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    dev.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 120_000;
    while (!output.includes('Press Ctrl-C to stop.')) {
      if (dev.exitCode !== null) throw new Error(`npm run dev exited with ${dev.exitCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`npm run dev did not print its banner within 120 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    apiKey = /API key\s+(kassa_sk_\S+)/.exec(output)![1]!;
  }, 180_000);

  afterAll(async () => {
    if (dev?.pid && groupAlive(dev.pid)) process.kill(-dev.pid, 'SIGKILL');
    const admin = postgres(`${PG_SERVER}/postgres`, { max: 1, onnotice: () => {} });
    await admin.unsafe(`drop database if exists ${dbName} with (force)`);
    await admin.end();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('starts everything, prints the key, the docs and a curl, and is healthy', async () => {
    for (const prefix of ['[api]', '[worker]', '[bitcoin]', '[ethereum]']) expect(output).toContain(prefix);
    expect(output).toContain(`Docs       ${apiUrl}/docs`);
    expect(output).toContain(`curl -s -X POST ${apiUrl}/v1/invoices`);
    expect(output).toContain(`[sandbox] created database ${dbName}`);
    const res = await fetch(`${apiUrl}/health`);
    const body = (await res.json()) as { status: string; checks: Record<string, { ok: boolean }> };
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(Object.values(body.checks).every((c) => c.ok)).toBe(true);
    const chains = JSON.parse(readFileSync(path.join(dir, '.kassa/sandbox/chains.json'), 'utf8')) as { chains: Record<string, unknown>; rates: { fixed: Record<string, string> } };
    expect(Object.keys(chains.chains).sort()).toEqual(['bitcoin', 'ethereum']);
    expect(chains.rates.fixed['BTC-USD']).toBe('60000.00');
  });

  it('creates an invoice with the printed key, pays and mines with the CLI, and the receiver verifies invoice.settled', async () => {
    const inv = await api<{ id: string; status: string }>('POST', '/v1/invoices', { amount: '25.00', currency: 'USD', payment_methods: ['BTC'], speed_policy: 'medium' });
    expect(await kassa('sandbox', 'pay', inv.id)).toMatch(/^paid 0\.00041667 BTC \(BTC\) to bcrt1/);
    let status = '';
    for (let i = 0; i < 120 && status === ''; i++) {
      const cur = await api<{ status: string }>('GET', `/v1/invoices/${inv.id}`);
      if (cur.status !== 'new') status = cur.status;
      else await new Promise((r) => setTimeout(r, 250));
    }
    expect(status).toBe('processing');
    expect(await kassa('sandbox', 'mine', '--chain', 'bitcoin')).toMatch(/mined 1 bitcoin block/);
    const log = path.join(dir, '.kassa/sandbox/webhooks.log');
    let settledHook = false;
    for (let i = 0; i < 120 && !settledHook; i++) {
      await new Promise((r) => setTimeout(r, 250));
      settledHook = existsSync(log) && readFileSync(log, 'utf8').split('\n').some((l) => l.includes(`"invoice_id":"${inv.id}"`) && l.includes('"type":"invoice.settled"') && l.includes('"verified":true'));
    }
    expect((await api<{ status: string }>('GET', `/v1/invoices/${inv.id}`)).status).toBe('settled');
    expect(settledHook, 'invoice.settled verified by the built-in receiver').toBe(true);
    expect(output).toMatch(new RegExp(`\\[webhooks\\] invoice\\.settled ${inv.id} verified`));
  }, 60_000);

  it('a second terminal without any environment follows the sandbox: merchants create, sandbox test-key, and sandbox pay for that merchant', async () => {
    // No DATABASE_URL, PORT, REDIS_URL: the commands read .kassa/sandbox/runtime.json.
    const bare = { PATH: process.env.PATH, HOME: process.env.HOME };
    const created = await run(process.execPath, ['bin/kassa.js', 'merchants', 'create', '--name', 'Second Shop', '--json'], { cwd: dir, env: bare, timeout: 90_000 });
    expect(created.stderr).toMatch(new RegExp(`^kassa: using sandbox \\(pid \\d+, API ${apiUrl.replace(/[.]/g, '\\.')}\\): database ${dbName} on 127\\.0\\.0\\.1:5432\\n$`));
    const { merchant, api_key } = JSON.parse(created.stdout) as { merchant: { id: string }; api_key: { secret: string } };
    const listed = await run(process.execPath, ['bin/kassa.js', 'merchants', 'list', '--json'], { cwd: dir, env: bare, timeout: 90_000 });
    expect((JSON.parse(listed.stdout) as { data: { id: string }[] }).data.map((m) => m.id)).toContain(merchant.id);

    const key = JSON.parse((await run(process.execPath, ['bin/kassa.js', 'sandbox', 'test-key', '--json'], { cwd: dir, env: bare })).stdout) as { xpub: string; first_addresses: { address: string }[] };
    const headers = { authorization: `Bearer ${api_key.secret}`, 'content-type': 'application/json' };
    const pm = await fetch(`${apiUrl}/v1/merchant/payment_methods/bitcoin`, { method: 'PUT', headers, body: JSON.stringify({ xpub: key.xpub, address_type: 'p2wpkh' }) });
    const pmBody = (await pm.json()) as { first_addresses: { address: string }[] };
    expect(pm.status, JSON.stringify(pmBody)).toBe(200);
    expect(pmBody.first_addresses.slice(0, 3).map((a) => a.address)).toEqual(key.first_addresses.map((a) => a.address));
    const inv = await fetch(`${apiUrl}/v1/invoices`, { method: 'POST', headers, body: JSON.stringify({ amount: '10.00', currency: 'USD', payment_methods: ['BTC'] }) });
    const invBody = (await inv.json()) as { id: string };
    expect(inv.status, JSON.stringify(invBody)).toBe(201);
    // Before: `sandbox_api_error: GET /v1/invoices/inv_… answered 404` (it read the invoice with the demo key).
    expect(await kassa('sandbox', 'pay', invBody.id)).toMatch(/^paid 0\.00016667 BTC \(BTC\) to bcrt1/);
  }, 120_000);

  const expected: Record<string, { path: string[]; exception: string | null }> = {
    paid: { path: ['new', 'processing', 'settled'], exception: null },
    'partial-then-topup': { path: ['new', 'processing', 'settled'], exception: null },
    overpaid: { path: ['new', 'processing', 'settled'], exception: 'paid_over' },
    expired: { path: ['new', 'expired'], exception: null },
    late: { path: ['new', 'expired'], exception: 'paid_late' },
    reorg: { path: ['new', 'processing', 'settled', 'invalid'], exception: null },
    'overpaid-refund': { path: ['new', 'processing', 'settled'], exception: 'paid_over' },
    'partial-refund': { path: ['new', 'processing', 'settled'], exception: null },
  };
  const refundPath = ['awaiting_destination', 'awaiting_approval', 'awaiting_signature', 'broadcast', 'completed'];
  for (const [name, exp] of Object.entries(expected)) {
    it(`scenario ${name}: ${exp.path.join(' → ')}${exp.exception ? ` [${exp.exception}]` : ''}`, async () => {
      const r = JSON.parse(await kassa('sandbox', 'scenario', name, '--json')) as {
        ok: boolean; path: string[]; exception: string | null; webhooks: string[]; observed_exceptions: string[];
        refund: { status: string; path: string[]; amount: string; asset: string } | null;
      };
      expect(r.path).toEqual(exp.path);
      // The refund scenarios: the refund went the whole way, signed by the sandbox as the merchant's wallet.
      if (name.endsWith('-refund')) {
        expect(r.refund, JSON.stringify(r)).toMatchObject({ status: 'completed', path: refundPath, asset: 'BTC' });
        // overpaid: 20% over 25.00 USD is 5.00 USD; partial: 10.00 of 25.00 USD (0.00016666 BTC at 60,000, rounded down).
        expect(r.refund!.amount).toBe(name === 'overpaid-refund' ? '0.00008333' : '0.00016666');
      } else expect(r.refund).toBeNull();
      expect(r.exception).toBe(exp.exception);
      expect(r.ok).toBe(true);
      if (name === 'partial-then-topup') expect(r.observed_exceptions).toContain('paid_partial');
      const last = `invoice.${exp.path[exp.path.length - 1] === 'new' ? 'created' : exp.path[exp.path.length - 1]}`;
      expect(r.webhooks).toContain(last);
    }, 90_000);
  }

  it('an ETH payment settles too (scenario paid --method ETH-ethereum)', async () => {
    const r = JSON.parse(await kassa('sandbox', 'scenario', 'paid', '--method', 'ETH-ethereum', '--json')) as { ok: boolean; path: string[] };
    expect(r.path).toEqual(['new', 'processing', 'settled']);
    expect(r.ok).toBe(true);
  }, 60_000);

  it('scenario partial-refund --method USDC-ethereum: the treasury sends the ERC-20 refund and Kassa checks it on chain', async () => {
    const r = JSON.parse(await kassa('sandbox', 'scenario', 'partial-refund', '--method', 'USDC-ethereum', '--json')) as { ok: boolean; path: string[]; refund: { status: string; path: string[]; amount: string } | null };
    expect(r.path).toEqual(['new', 'processing', 'settled']);
    expect(r.refund, JSON.stringify(r)).toMatchObject({ status: 'completed', path: refundPath, amount: '10.000000' });
    expect(r.ok).toBe(true);
  }, 90_000);

  it('scenario reorg --method ETH-ethereum: a hardhat snapshot revert drops the payment (new → processing → settled → invalid)', async () => {
    const r = JSON.parse(await kassa('sandbox', 'scenario', 'reorg', '--method', 'ETH-ethereum', '--json')) as { ok: boolean; path: string[]; exception: string | null; webhooks: string[] };
    expect(r.path).toEqual(['new', 'processing', 'settled', 'invalid']);
    expect(r.exception).toBeNull();
    expect(r.ok).toBe(true);
    expect(r.webhooks).toContain('invoice.invalid');
  }, 90_000);

  it('sandbox reorg --chain ethereum --depth 2 replaces the last 2 blocks with 3', async () => {
    // The reorg scenario's new branch was mined by the sandbox, one snapshot per block.
    const r = JSON.parse(await kassa('sandbox', 'reorg', '--chain', 'ethereum', '--depth', '2', '--json')) as {
      chain: string; depth: number; old_tip: { height: number; hash: string }; new_tip: { height: number; hash: string }; dropped_transactions: string[];
    };
    expect(r.chain).toBe('ethereum');
    expect(r.depth).toBe(2);
    expect(r.new_tip.height).toBe(r.old_tip.height + 1);
    expect(r.new_tip.hash).not.toBe(r.old_tip.hash);
    expect(r.dropped_transactions).toEqual([]);
    // The EVM watcher follows the new branch (and stays healthy).
    let chain: { ok: boolean; detail?: { tip_height: number | null } } | undefined;
    for (let i = 0; i < 60; i++) {
      chain = ((await (await fetch(`${apiUrl}/health`)).json()) as { checks: Record<string, { ok: boolean; detail?: { tip_height: number | null } }> }).checks['chain:ethereum'];
      if (chain?.ok && chain.detail?.tip_height === r.new_tip.height) break;
      await new Promise((res) => setTimeout(res, 250));
    }
    expect(chain, JSON.stringify(chain)).toMatchObject({ ok: true, detail: { tip_height: r.new_tip.height } });
  }, 60_000);

  it('Ctrl-C (SIGINT to the process group) stops every process of the sandbox', async () => {
    const pgid = dev.pid!;
    const exited = new Promise<void>((resolve) => dev.once('exit', () => resolve()));
    process.kill(-pgid, 'SIGINT');
    await exited;
    const deadline = Date.now() + 15_000;
    while (groupAlive(pgid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(groupAlive(pgid), 'processes left in the sandbox process group').toBe(false);
    expect(output).toContain('[sandbox] stopping (SIGINT)');
  }, 30_000);
});

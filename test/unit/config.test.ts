import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config.ts';

const base = { KASSA_SECRET_KEY: 'ab'.repeat(32) };

describe('loadConfig', () => {
  it('has defaults that make the sandbox work with no environment', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kassa-cfg-'));
    const c = loadConfig({ KASSA_DATA_DIR: dir });
    expect(c.databaseUrl).toBe('postgres://postgres@127.0.0.1:5432/kassa');
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(c.port).toBe(3000);
    expect(c.publicUrl).toBe('http://localhost:3000');
    expect(c.secretKey).toHaveLength(32);
    // The generated development key is kept, so encrypted secrets survive a restart.
    expect(loadConfig({ KASSA_DATA_DIR: dir }).secretKey.equals(c.secretKey)).toBe(true);
  });

  it.each([
    [{ PORT: 'abc' }, /^PORT is invalid \("abc"\)/],
    [{ PORT: '70000' }, /^PORT is invalid/],
    [{ DATABASE_URL: 'mysql://x/y' }, /^DATABASE_URL is invalid \("mysql:\/\/x\/y"\): must be a URL starting with postgres:/],
    [{ REDIS_URL: 'nope' }, /^REDIS_URL is invalid/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL is invalid/],
    [{ PUBLIC_URL: 'ftp://x' }, /^PUBLIC_URL is invalid/],
    [{ KASSA_SECRET_KEY: 'short' }, /^KASSA_SECRET_KEY is invalid/],
  ])('a bad value stops start-up with one line naming the variable: %j', (env, re) => {
    expect(() => loadConfig({ ...base, ...env })).toThrowError(ConfigError);
    try {
      loadConfig({ ...base, ...env });
    } catch (err) {
      expect((err as Error).message).toMatch(re);
      expect((err as Error).message).not.toContain('\n');
    }
  });

  it('production requires KASSA_SECRET_KEY', () => {
    expect(() => loadConfig({ KASSA_ENV: 'production' })).toThrowError(/KASSA_SECRET_KEY is missing/);
  });

  it('reads the chains file named by KASSA_CONFIG and reports where it is wrong', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kassa-cfg-'));
    const good = path.join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ chains: { bitcoin: { type: 'bitcoin', network: 'regtest' } } }));
    const c = loadConfig({ ...base, KASSA_CONFIG: good });
    expect(c.chains.bitcoin).toMatchObject({ type: 'bitcoin', network: 'regtest', poll_interval_ms: 1000 });

    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ chains: { ethereum: { type: 'evm', network: 'x', chain_id: 'one', rpc_url: 'http://a' } } }));
    expect(() => loadConfig({ ...base, KASSA_CONFIG: bad })).toThrowError(/KASSA_CONFIG \(.*bad\.json\) is invalid at chains\.ethereum\.chain_id/);
    expect(() => loadConfig({ ...base, KASSA_CONFIG: path.join(dir, 'missing.json') })).toThrowError(/KASSA_CONFIG .* cannot be read/);
  });
});

/**
 * The registry's sweeper start (src/chains/registry.ts createChainSweeper), which the worker's
 * processors use: a sweeper only for an EVM chain whose config has a sweeper key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChainSweeper } from '../../src/chains/registry.ts';
import type { EvmChainConfig } from '../../src/config.ts';
import { createTestContext, type TestContext } from '../support/db.ts';
import { writeChainsFile } from '../support/merchant.ts';
import { HARDHAT_ACCOUNTS } from '../support/hardhat.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext({ KASSA_CONFIG: writeChainsFile() });
});
afterAll(async () => ctx?.close());

describe('createChainSweeper', () => {
  it('gives no sweeper to a Bitcoin chain or to an EVM chain without a sweeper key', () => {
    const deps = { sql: ctx.deps.sql, logger: ctx.deps.logger };
    expect(createChainSweeper('bitcoin', ctx.config.chains.bitcoin!, deps)).toBeNull();
    const evm = ctx.config.chains.ethereum as EvmChainConfig;
    expect(evm.sweeper_private_key).toBeUndefined();
    expect(createChainSweeper('ethereum', evm, deps)).toBeNull();
  });

  it('gives an EVM chain with a sweeper key a sweeper that reads the database (nothing settled: nothing to sweep)', async () => {
    const evm = { ...(ctx.config.chains.ethereum as EvmChainConfig), sweeper_private_key: HARDHAT_ACCOUNTS[1]!.privateKey };
    const sweeper = createChainSweeper('ethereum', evm, { sql: ctx.deps.sql, logger: ctx.deps.logger });
    expect(sweeper).not.toBeNull();
    expect(await sweeper!.sweepSettled(10)).toEqual([]);
  });
});

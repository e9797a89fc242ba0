import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEther, parseEventLogs, getAddress, type Address, type Hex } from 'viem';
import { forwarderAbi, forwarderFactoryAbi } from '../../src/chains/evm/artifacts.ts';
import { testUSDCAbi, testUSDTAbi } from '../../src/sandbox/contract-artifacts.ts';
import { ethSenderAbi, ethSenderBytecode, falseTokenAbi, falseTokenBytecode, reentrantTreasuryAbi, reentrantTreasuryBytecode, rejectingReceiverAbi, rejectingReceiverBytecode } from '../support/contract-artifacts.ts';
import {
  forwarderProxyInitCode,
  forwarderProxyRuntimeCode,
  forwarderSalt,
  invoiceSaltFor,
  predictForwarderAddress,
} from '../../src/chains/evm/forwarder.ts';
import { DEFAULT_TEST_TOKEN_MINT } from '../../src/sandbox/test-tokens.ts';
import { HARDHAT_ACCOUNTS } from '../support/hardhat.ts';
import {
  mined,
  randomAddress,
  randomBytes32,
  revertOf,
  setupContractsFixture,
  wallet,
  type ContractsFixture,
} from './fixture.ts';

let f: ContractsFixture;

beforeAll(async () => {
  f = await setupContractsFixture();
}, 60_000);

afterAll(async () => {
  await f?.node.stop();
});

// ---- helpers ---------------------------------------------------------------------------------

const predict = (treasury: Address, invoiceSalt: Hex): Promise<Address> =>
  f.publicClient.readContract({
    address: f.contracts.factory,
    abi: forwarderFactoryAbi,
    functionName: 'predict',
    args: [treasury, invoiceSalt],
  });

const ethBalance = (address: Address): Promise<bigint> => f.publicClient.getBalance({ address });

const tokenBalance = (token: Address, owner: Address): Promise<bigint> =>
  f.publicClient.readContract({ address: token, abi: testUSDCAbi, functionName: 'balanceOf', args: [owner] });

/** Sends ETH from dev account `from` (default 1). */
const sendEth = (to: Address, value: bigint, from = 1) =>
  mined(f, wallet(f, from).sendTransaction({ to, value, account: wallet(f, from).account, chain: wallet(f, from).chain }));

/** Transfers test tokens from the deployer (account 0, holds the minted supply). */
const sendUsdc = (to: Address, amount: bigint) =>
  mined(f, wallet(f, 0).writeContract({ address: f.contracts.testUsdc, abi: testUSDCAbi, functionName: 'transfer', args: [to, amount] }));
const sendUsdt = (to: Address, amount: bigint) =>
  mined(f, wallet(f, 0).writeContract({ address: f.contracts.testUsdt, abi: testUSDTAbi, functionName: 'transfer', args: [to, amount] }));

const deployAndFlush = (treasury: Address, invoiceSalt: Hex, tokens: Address[], from = 2) =>
  mined(
    f,
    wallet(f, from).writeContract({
      address: f.contracts.factory,
      abi: forwarderFactoryAbi,
      functionName: 'deployAndFlush',
      args: [treasury, invoiceSalt, tokens],
    }),
  );

const deploy = (treasury: Address, invoiceSalt: Hex, from = 2) =>
  mined(
    f,
    wallet(f, from).writeContract({
      address: f.contracts.factory,
      abi: forwarderFactoryAbi,
      functionName: 'deploy',
      args: [treasury, invoiceSalt],
    }),
  );

const deployHelper = async (abi: readonly unknown[], bytecode: Hex): Promise<Address> => {
  const w = wallet(f, 0);
  const receipt = await mined(f, w.deployContract({ abi: abi as never, bytecode, account: w.account, chain: w.chain }));
  if (!receipt.contractAddress) throw new Error('no contract address');
  return getAddress(receipt.contractAddress);
};

const gasCost = (r: { gasUsed: bigint; effectiveGasPrice: bigint }): bigint => r.gasUsed * r.effectiveGasPrice;

// ---- tests -----------------------------------------------------------------------------------

describe('hardhat node helper', () => {
  it('exposes the dev accounts the node actually has (keys match eth_accounts 0..9)', async () => {
    const res = await fetch(f.node.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_accounts', params: [] }),
    });
    const onNode = ((await res.json()) as { result: string[] }).result;
    expect(onNode.slice(0, 10).map((a) => getAddress(a))).toEqual(HARDHAT_ACCOUNTS.map((a) => a.address));
    expect(HARDHAT_ACCOUNTS).toHaveLength(10);
    expect(await f.publicClient.getChainId()).toBe(31337);
  });
});

describe('deployDevContracts()', () => {
  it('deploys the factory with its implementation and the test tokens, minting to the deployer', async () => {
    const { factory, implementation, testUsdc, testUsdt, chainId } = f.contracts;
    expect(chainId).toBe(31337);
    for (const a of [factory, implementation, testUsdc, testUsdt]) {
      expect((await f.publicClient.getCode({ address: a }))?.length ?? 0).toBeGreaterThan(2);
    }
    const implFactory = await f.publicClient.readContract({ address: implementation, abi: forwarderAbi, functionName: 'FACTORY' });
    expect(implFactory).toBe(factory);
    const deployer = wallet(f, 0).account.address;
    // The deployer may have spent some in earlier tests; the total supply is exactly the mint.
    for (const [token, abi] of [[testUsdc, testUSDCAbi], [testUsdt, testUSDTAbi]] as const) {
      expect(await f.publicClient.readContract({ address: token, abi, functionName: 'decimals' })).toBe(6);
      expect(await f.publicClient.readContract({ address: token, abi, functionName: 'totalSupply' })).toBe(DEFAULT_TEST_TOKEN_MINT);
    }
    expect(await tokenBalance(testUsdc, deployer)).toBeGreaterThan(0n);
  });
});

describe('address prediction', () => {
  it('invoiceSaltFor() is keccak256 of the UTF-8 invoice id', () => {
    // keccak256("abc"), a published test vector.
    expect(invoiceSaltFor('abc')).toBe('0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45');
    expect(invoiceSaltFor('inv_1')).not.toBe(invoiceSaltFor('inv_2'));
    expect(() => invoiceSaltFor('')).toThrow(/invoice id/);
  });

  it('the TS init code and salt equal the factory\'s', async () => {
    const initCode = await f.publicClient.readContract({ address: f.contracts.factory, abi: forwarderFactoryAbi, functionName: 'initCode' });
    expect(initCode).toBe(forwarderProxyInitCode(f.contracts.implementation));
    expect((initCode.length - 2) / 2).toBe(61);
    const treasury = randomAddress();
    const s = randomBytes32();
    const saltOnChain = await f.publicClient.readContract({
      address: f.contracts.factory,
      abi: forwarderFactoryAbi,
      functionName: 'saltOf',
      args: [treasury, s],
    });
    expect(saltOnChain).toBe(forwarderSalt(treasury, s));
  });

  it('predictForwarderAddress() equals factory.predict() for 50 random treasuries and salts', async () => {
    const cases = Array.from({ length: 50 }, (_, i) => ({
      treasury: randomAddress(),
      invoiceSalt: i % 2 === 0 ? randomBytes32() : invoiceSaltFor(`inv_${i}_${Math.random()}`),
    }));
    const onChain = await Promise.all(cases.map((c) => predict(c.treasury, c.invoiceSalt)));
    const offline = cases.map((c) =>
      predictForwarderAddress({ factory: f.contracts.factory, implementation: f.contracts.implementation, ...c }),
    );
    expect(offline).toEqual(onChain);
    expect(new Set(offline).size).toBe(50);
  });

  it('the deployed forwarder lives at the predicted address with the expected proxy code', async () => {
    const treasury = randomAddress();
    const s = randomBytes32();
    const predicted = predictForwarderAddress({ factory: f.contracts.factory, implementation: f.contracts.implementation, treasury, invoiceSalt: s });
    const receipt = await deploy(treasury, s);
    const [ev] = parseEventLogs({ abi: forwarderFactoryAbi, logs: receipt.logs, eventName: 'ForwarderDeployed' });
    expect(ev?.args).toEqual({ forwarder: predicted, treasury: getAddress(treasury), invoiceSalt: s });
    expect(await f.publicClient.getCode({ address: predicted })).toBe(forwarderProxyRuntimeCode(f.contracts.implementation));
    expect(await f.publicClient.readContract({ address: predicted, abi: forwarderAbi, functionName: 'treasury' })).toBe(getAddress(treasury));
  });
});

describe('deployAndFlush()', () => {
  it('sweeps ETH, USDC and USDT sent to the predicted address before deployment to the treasury', async () => {
    const treasury = randomAddress();
    const s = invoiceSaltFor(`inv_${Date.now()}_prefund`);
    const forwarder = await predict(treasury, s);
    const eth = parseEther('1.5');
    const usdc = 123_456_789n; // 123.456789 USDC
    const usdt = 42_000_000n;

    await sendEth(forwarder, eth);
    await sendUsdc(forwarder, usdc);
    await sendUsdt(forwarder, usdt);
    expect(await f.publicClient.getCode({ address: forwarder })).toBeUndefined();
    expect(await ethBalance(forwarder)).toBe(eth);

    const caller = wallet(f, 2).account.address;
    const callerBefore = await ethBalance(caller);
    const receipt = await deployAndFlush(treasury, s, [f.contracts.testUsdc, f.contracts.testUsdt]);

    expect(await ethBalance(treasury)).toBe(eth);
    expect(await tokenBalance(f.contracts.testUsdc, treasury)).toBe(usdc);
    expect(await tokenBalance(f.contracts.testUsdt, treasury)).toBe(usdt);
    expect(await ethBalance(forwarder)).toBe(0n);
    expect(await tokenBalance(f.contracts.testUsdc, forwarder)).toBe(0n);
    expect(await tokenBalance(f.contracts.testUsdt, forwarder)).toBe(0n);
    // The caller paid gas and received nothing.
    expect(await ethBalance(caller)).toBe(callerBefore - gasCost(receipt));

    const deployed = parseEventLogs({ abi: forwarderFactoryAbi, logs: receipt.logs, eventName: 'ForwarderDeployed' });
    expect(deployed.map((e) => e.args)).toEqual([{ forwarder, treasury: getAddress(treasury), invoiceSalt: s }]);
    const flushed = parseEventLogs({ abi: forwarderAbi, logs: receipt.logs, eventName: 'Flushed' });
    expect(flushed.map((e) => [e.address.toLowerCase(), e.args])).toEqual([
      [forwarder.toLowerCase(), { treasury: getAddress(treasury), amount: eth }],
    ]);
    const tokens = parseEventLogs({ abi: forwarderAbi, logs: receipt.logs, eventName: 'TokensFlushed' });
    expect(tokens.map((e) => e.args)).toEqual([
      { token: f.contracts.testUsdc, treasury: getAddress(treasury), amount: usdc },
      { token: f.contracts.testUsdt, treasury: getAddress(treasury), amount: usdt },
    ]);
  });

  it('on an already deployed forwarder flushes later deposits (incl. a 2300-gas transfer from a contract)', async () => {
    const treasury = randomAddress();
    const s = randomBytes32();
    const forwarder = await predict(treasury, s);
    await deployAndFlush(treasury, s, []); // deploys, nothing to flush
    expect(await ethBalance(treasury)).toBe(0n);

    const sender = await deployHelper(ethSenderAbi, ethSenderBytecode);
    const w = wallet(f, 3);
    // Solidity `transfer` (2300-gas stipend) to a deployed forwarder must succeed.
    await mined(f, w.writeContract({ address: sender, abi: ethSenderAbi, functionName: 'sendViaTransfer', args: [forwarder], value: 1000n }));
    await mined(f, w.writeContract({ address: sender, abi: ethSenderAbi, functionName: 'sendViaCall', args: [forwarder], value: 2000n }));
    await sendUsdt(forwarder, 5n);
    expect(await ethBalance(forwarder)).toBe(3000n);

    const receipt = await deployAndFlush(treasury, s, [f.contracts.testUsdt]);
    expect(parseEventLogs({ abi: forwarderFactoryAbi, logs: receipt.logs, eventName: 'ForwarderDeployed' })).toHaveLength(0);
    expect(await ethBalance(treasury)).toBe(3000n);
    expect(await tokenBalance(f.contracts.testUsdt, treasury)).toBe(5n);
    expect(await ethBalance(forwarder)).toBe(0n);
  });
});

describe('treasury binding', () => {
  it('initialize() cannot be called again, by anyone (not even the factory)', async () => {
    const treasury = randomAddress();
    const s = randomBytes32();
    const forwarder = await predict(treasury, s);
    await deploy(treasury, s);
    const attacker = wallet(f, 4);

    const byAttacker = await revertOf(() =>
      f.publicClient.simulateContract({ address: forwarder, abi: forwarderAbi, functionName: 'initialize', args: [attacker.account.address], account: attacker.account }),
    );
    expect(byAttacker.name).toBe('NotFactory');

    // Impersonate the factory itself: the clone is already initialized.
    await f.publicClient.request({ method: 'hardhat_impersonateAccount' as never, params: [f.contracts.factory] as never });
    const byFactory = await revertOf(() =>
      f.publicClient.simulateContract({ address: forwarder, abi: forwarderAbi, functionName: 'initialize', args: [attacker.account.address], account: f.contracts.factory }),
    );
    expect(byFactory.name).toBe('AlreadyInitialized');

    // Nor can anyone initialize the implementation.
    const impl = await revertOf(() =>
      f.publicClient.simulateContract({ address: f.contracts.implementation, abi: forwarderAbi, functionName: 'initialize', args: [attacker.account.address], account: attacker.account }),
    );
    expect(impl.name).toBe('NotFactory');
    expect(await f.publicClient.readContract({ address: forwarder, abi: forwarderAbi, functionName: 'treasury' })).toBe(getAddress(treasury));
  });

  it('the same invoice salt with another treasury gives another address, bound to that treasury', async () => {
    const t1 = randomAddress();
    const t2 = randomAddress();
    const s = randomBytes32();
    const a1 = await predict(t1, s);
    const a2 = await predict(t2, s);
    expect(a1).not.toBe(a2);
    await sendEth(a1, 777n);
    await deployAndFlush(t2, s, []);
    await deployAndFlush(t1, s, []);
    expect(await f.publicClient.readContract({ address: a1, abi: forwarderAbi, functionName: 'treasury' })).toBe(getAddress(t1));
    expect(await f.publicClient.readContract({ address: a2, abi: forwarderAbi, functionName: 'treasury' })).toBe(getAddress(t2));
    expect(await ethBalance(t1)).toBe(777n);
    expect(await ethBalance(t2)).toBe(0n);
  });

  it('a second deploy of the same salt reverts with ForwarderAlreadyDeployed', async () => {
    const treasury = randomAddress();
    const s = randomBytes32();
    const forwarder = await predict(treasury, s);
    await deploy(treasury, s);
    const again = await revertOf(() =>
      f.publicClient.simulateContract({
        address: f.contracts.factory,
        abi: forwarderFactoryAbi,
        functionName: 'deploy',
        args: [treasury, s],
        account: wallet(f, 5).account,
      }),
    );
    expect(again).toEqual({ name: 'ForwarderAlreadyDeployed', args: [forwarder] });
    expect(await f.publicClient.readContract({ address: f.contracts.factory, abi: forwarderFactoryAbi, functionName: 'isDeployed', args: [treasury, s] })).toBe(true);
  });

  it('deploying for the zero treasury reverts with ZeroTreasury', async () => {
    const r = await revertOf(() =>
      f.publicClient.simulateContract({
        address: f.contracts.factory,
        abi: forwarderFactoryAbi,
        functionName: 'deploy',
        args: ['0x0000000000000000000000000000000000000000', randomBytes32()],
        account: wallet(f, 5).account,
      }),
    );
    expect(r.name).toBe('ZeroTreasury');
  });
});

describe('flush()', () => {
  it('called by any account pays only the treasury', async () => {
    const treasury = randomAddress();
    const s = randomBytes32();
    const forwarder = await predict(treasury, s);
    await deploy(treasury, s);
    await sendEth(forwarder, parseEther('0.25'));
    await sendUsdc(forwarder, 1_000_000n);

    const stranger = wallet(f, 6);
    const before = await ethBalance(stranger.account.address);
    const r1 = await mined(f, stranger.writeContract({ address: forwarder, abi: forwarderAbi, functionName: 'flush' }));
    const r2 = await mined(f, stranger.writeContract({ address: forwarder, abi: forwarderAbi, functionName: 'flushTokens', args: [[f.contracts.testUsdc]] }));

    expect(await ethBalance(treasury)).toBe(parseEther('0.25'));
    expect(await tokenBalance(f.contracts.testUsdc, treasury)).toBe(1_000_000n);
    expect(await ethBalance(forwarder)).toBe(0n);
    expect(await ethBalance(stranger.account.address)).toBe(before - gasCost(r1) - gasCost(r2));
    expect(await tokenBalance(f.contracts.testUsdc, stranger.account.address)).toBe(0n);
    const [ev] = parseEventLogs({ abi: forwarderAbi, logs: r1.logs, eventName: 'Flushed' });
    expect(ev?.args).toEqual({ treasury: getAddress(treasury), amount: parseEther('0.25') });
  });

  it('flushTokens() works for a USDT-like token whose transfer returns nothing', async () => {
    const treasury = randomAddress();
    const s = randomBytes32();
    const forwarder = await predict(treasury, s);
    await deploy(treasury, s);
    await sendUsdt(forwarder, 987_654n);
    const r = await mined(f, wallet(f, 7).writeContract({ address: forwarder, abi: forwarderAbi, functionName: 'flushTokens', args: [[f.contracts.testUsdt]] }));
    expect(await tokenBalance(f.contracts.testUsdt, treasury)).toBe(987_654n);
    expect(await tokenBalance(f.contracts.testUsdt, forwarder)).toBe(0n);
    const events = parseEventLogs({ abi: forwarderAbi, logs: r.logs, eventName: 'TokensFlushed' });
    expect(events.map((e) => e.args)).toEqual([{ token: f.contracts.testUsdt, treasury: getAddress(treasury), amount: 987_654n }]);
  });

  it('a token whose transfer returns false makes flushTokens() revert with TokenTransferFailed', async () => {
    const bad = await deployHelper(falseTokenAbi, falseTokenBytecode);
    const treasury = randomAddress();
    const s = randomBytes32();
    const forwarder = await predict(treasury, s);
    await deploy(treasury, s);
    await mined(f, wallet(f, 0).writeContract({ address: bad, abi: falseTokenAbi, functionName: 'mint', args: [forwarder, 10n] }));
    const r = await revertOf(() =>
      f.publicClient.simulateContract({ address: forwarder, abi: forwarderAbi, functionName: 'flushTokens', args: [[bad]], account: wallet(f, 7).account }),
    );
    expect(r).toEqual({ name: 'TokenTransferFailed', args: [bad, getAddress(treasury), 10n] });
  });

  it('a treasury that rejects ETH makes flush() revert and the funds stay in the forwarder', async () => {
    const rejecting = await deployHelper(rejectingReceiverAbi, rejectingReceiverBytecode);
    const s = randomBytes32();
    const forwarder = await predict(rejecting, s);
    await sendEth(forwarder, 1234n);
    const r = await revertOf(() =>
      f.publicClient.simulateContract({
        address: f.contracts.factory,
        abi: forwarderFactoryAbi,
        functionName: 'deployAndFlush',
        args: [rejecting, s, []],
        account: wallet(f, 7).account,
      }),
      forwarderAbi,
    );
    expect(r).toEqual({ name: 'NativeTransferFailed', args: [rejecting, 1234n] });
    expect(await ethBalance(forwarder)).toBe(1234n);
  });

  it('reentrancy is harmless: a treasury re-entering flush gets exactly the balance once', async () => {
    const treasury = await deployHelper(reentrantTreasuryAbi, reentrantTreasuryBytecode);
    const s = randomBytes32();
    const forwarder = await predict(treasury, s);
    await mined(f, wallet(f, 0).writeContract({ address: treasury, abi: reentrantTreasuryAbi, functionName: 'setTarget', args: [forwarder, [f.contracts.testUsdc]] }));
    await sendEth(forwarder, parseEther('1'));
    await sendUsdc(forwarder, 500n);

    await deployAndFlush(treasury, s, [f.contracts.testUsdc]);
    const read = (functionName: 'received' | 'receiveCount' | 'reentryAttempts' | 'reentryFailures') =>
      f.publicClient.readContract({ address: treasury, abi: reentrantTreasuryAbi, functionName });
    expect(await ethBalance(treasury)).toBe(parseEther('1'));
    expect(await read('received')).toBe(parseEther('1'));
    expect(await read('receiveCount')).toBe(1n);
    expect(await read('reentryAttempts')).toBe(2n); // flush() and flushTokens() re-entered...
    expect(await read('reentryFailures')).toBe(2n); // ...and both were refused by the guard
    expect(await tokenBalance(f.contracts.testUsdc, treasury)).toBe(500n);
    expect(await ethBalance(forwarder)).toBe(0n);

    // A later deposit, flushed directly: again exactly the balance.
    await sendEth(forwarder, 333n);
    await mined(f, wallet(f, 8).writeContract({ address: forwarder, abi: forwarderAbi, functionName: 'flush' }));
    expect(await ethBalance(treasury)).toBe(parseEther('1') + 333n);
    expect(await read('receiveCount')).toBe(2n);
    expect(await read('reentryFailures')).toBe(4n);
  });
});

describe('factory views and batch flush', () => {
  it('balancesOf() returns the native balance of each address, in order', async () => {
    const addrs = [randomAddress(), randomAddress(), randomAddress(), randomAddress()];
    const amounts = [1n, 0n, parseEther('2.5'), 987_654_321n];
    for (let i = 0; i < addrs.length; i++) {
      const a = amounts[i];
      const to = addrs[i];
      if (a && to) await sendEth(to, a, 9);
    }
    const funded = wallet(f, 9).account.address;
    const query = [...addrs, funded, addrs[0] as Address];
    const balances = await f.publicClient.readContract({ address: f.contracts.factory, abi: forwarderFactoryAbi, functionName: 'balancesOf', args: [query] });
    expect(balances).toEqual([...amounts, await ethBalance(funded), 1n]);
    expect(await f.publicClient.readContract({ address: f.contracts.factory, abi: forwarderFactoryAbi, functionName: 'balancesOf', args: [[]] })).toEqual([]);
  });

  it('flushMany() flushes several deployed forwarders to their own treasuries', async () => {
    const pairs = await Promise.all(
      [1n, 2n, 3n].map(async (amount) => {
        const treasury = randomAddress();
        const s = randomBytes32();
        return { treasury, s, amount, forwarder: await predict(treasury, s) };
      }),
    );
    for (const p of pairs) {
      await deploy(p.treasury, p.s);
      await sendEth(p.forwarder, p.amount * 1000n);
      await sendUsdc(p.forwarder, p.amount);
    }
    await mined(
      f,
      wallet(f, 8).writeContract({
        address: f.contracts.factory,
        abi: forwarderFactoryAbi,
        functionName: 'flushMany',
        args: [pairs.map((p) => p.forwarder), [f.contracts.testUsdc]],
      }),
    );
    for (const p of pairs) {
      expect(await ethBalance(p.treasury)).toBe(p.amount * 1000n);
      expect(await tokenBalance(f.contracts.testUsdc, p.treasury)).toBe(p.amount);
      expect(await ethBalance(p.forwarder)).toBe(0n);
    }
  });
});

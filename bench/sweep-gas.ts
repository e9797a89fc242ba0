/**
 * Gas used by one sweep, measured on a local hardhat node with Kassa's contracts and the test
 * tokens (docs/evm.md, "What a sweep costs"). Prints one line per case: the receipts' gasUsed.
 *
 *   npm run bench:sweep-gas
 *
 * The test tokens are plain ERC-20s; Circle's USDC (a proxy with extra checks) costs some
 * thousand gas more per token transfer, which the docs add on top of these figures.
 */
import { keccak256, parseEther, toHex, type Address, type Hex } from 'viem';
import { forwarderFactoryAbi } from '../src/chains/evm/artifacts.ts';
import { testUSDCAbi } from '../src/sandbox/contract-artifacts.ts';
import { mined, randomAddress, setupContractsFixture, wallet } from '../test/contracts/fixture.ts';

const f = await setupContractsFixture();
try {
  const { factory, testUsdc: usdc, testUsdt: usdt } = f.contracts;
  let n = 0;
  const salt = (): Hex => keccak256(toHex(`sweep-gas-${n++}`));
  const predict = (treasury: Address, s: Hex) => f.publicClient.readContract({ address: factory, abi: forwarderFactoryAbi, functionName: 'predict', args: [treasury, s] });
  const payEth = async (to: Address) => mined(f, wallet(f, 1).sendTransaction({ to, value: parseEther('0.01') }));
  const payUsdc = async (to: Address) => mined(f, wallet(f, 0).writeContract({ address: usdc, abi: testUSDCAbi, functionName: 'transfer', args: [to, 1_000_000n] }));
  const sweep = async (treasury: Address, s: Hex, tokens: Address[]) =>
    (await mined(f, wallet(f, 9).writeContract({ address: factory, abi: forwarderFactoryAbi, functionName: 'deployAndFlush', args: [treasury, s, tokens] }))).gasUsed;

  const rows: [string, bigint][] = [];
  // A treasury that already holds ETH and USDC (the steady state: a first payment into an empty
  // account or balance costs up to 25,000 gas more, once).
  const treasury = randomAddress();
  await payEth(treasury);
  await payUsdc(treasury);
  {
    const s = salt();
    await payEth(await predict(treasury, s));
    rows.push(['first sweep (deploy + flush), ETH only, tokens [USDC]', await sweep(treasury, s, [usdc])]);
  }
  {
    const s = salt();
    await payUsdc(await predict(treasury, s));
    rows.push(['first sweep (deploy + flush), USDC, tokens [USDC]', await sweep(treasury, s, [usdc])]);
  }
  {
    const s = salt();
    await payUsdc(await predict(treasury, s));
    rows.push(['first sweep (deploy + flush), USDC, tokens [USDC, USDT]', await sweep(treasury, s, [usdc, usdt])]);
    await payUsdc(await predict(treasury, s));
    rows.push(['repeat sweep (deployed), USDC, tokens [USDC, USDT]', await sweep(treasury, s, [usdc, usdt])]);
  }
  {
    // Ten deployed forwarders holding USDC again, flushed by one flushMany.
    const forwarders: Address[] = [];
    for (let i = 0; i < 10; i++) {
      const s = salt();
      const fw = await predict(treasury, s);
      await payUsdc(fw);
      await sweep(treasury, s, [usdc]);
      await payUsdc(fw);
      forwarders.push(fw);
    }
    const single = forwarders.pop()!;
    const batch = (await mined(f, wallet(f, 9).writeContract({ address: factory, abi: forwarderFactoryAbi, functionName: 'flushMany', args: [forwarders, [usdc]] }))).gasUsed;
    rows.push([`flushMany of ${forwarders.length} deployed, USDC, tokens [USDC]: per forwarder`, batch / BigInt(forwarders.length)]);
    const one = (await mined(f, wallet(f, 9).writeContract({ address: factory, abi: forwarderFactoryAbi, functionName: 'flushMany', args: [[single], [usdc]] }))).gasUsed;
    rows.push(['flushMany of 1 deployed, USDC, tokens [USDC]', one]);
  }
  for (const [what, gas] of rows) console.log(`${gas.toString().padStart(7)} gas  ${what}`);
} finally {
  await f.node.stop();
}

/** The devnet's skewed block timestamps used by the fault harness (`devnet_setblocktimeoffset`). */
import { describe, expect, it } from 'vitest';
import * as bitcoin from 'bitcoinjs-lib';
import { DevnetChain } from '../../src/sandbox/devnet/bitcoin/chain.ts';
import { callDevnetMethod } from '../../src/sandbox/devnet/bitcoin/rpc-methods.ts';

describe('devnet_setblocktimeoffset', () => {
  it('stamps new blocks hours early or late, then returns to increasing timestamps', () => {
    let now = 1_800_000_000;
    const chain = new DevnetChain({ now: () => now });
    const script = bitcoin.payments.p2wpkh({ hash: Buffer.alloc(20, 1) }).output!;
    const timeOf = (hash: string) => (callDevnetMethod(chain, 'getblockheader', [hash]) as { time: number }).time;
    const [a] = chain.mine(1, script);
    expect(timeOf(a!)).toBe(now);
    callDevnetMethod(chain, 'devnet_setblocktimeoffset', [-3 * 3600]);
    now += 10;
    const [early] = chain.mine(1, script);
    expect(timeOf(early!)).toBe(now - 3 * 3600);
    callDevnetMethod(chain, 'devnet_setblocktimeoffset', [5 * 3600]);
    const [late] = chain.mine(1, script);
    expect(timeOf(late!)).toBe(now + 5 * 3600);
    callDevnetMethod(chain, 'devnet_setblocktimeoffset', [0]);
    const [next] = chain.mine(1, script);
    expect(timeOf(next!)).toBe(now + 5 * 3600 + 1); // increasing again: after the late block
    expect(() => callDevnetMethod(chain, 'devnet_setblocktimeoffset', ['soon'])).toThrow(/number/);
  });
});

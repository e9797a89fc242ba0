/** The integration guides' Bitcoin keys are complete and accepted by Kassa's own parser. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseBitcoinKeySource } from '../../src/chains/bitcoin/descriptor.ts';
import { TEST_DESCRIPTOR } from '../../src/api/openapi.ts';

describe('integration guide keys', () => {
  for (const file of ['docs/integration-guide.md', 'docs/integration-guide.zh-CN.md']) {
    it(`${file}: the xpub example and the descriptor parse`, () => {
      const text = readFileSync(file, 'utf8');
      const xpubs = [...text.matchAll(/"xpub": "([^"]+)"/g)].map((m) => m[1]!);
      expect(xpubs.length).toBeGreaterThan(0);
      for (const xpub of xpubs) {
        expect(parseBitcoinKeySource({ xpub, address_type: 'p2wpkh' }, 'regtest').descriptor).toMatch(/^wpkh\(tpub[1-9A-HJ-NP-Za-km-z]{100,}\/0\/\*\)#[a-z0-9]{8}$/);
      }
      const descriptors = [...text.matchAll(/`(wpkh\(\[[^`]+)`/g)].map((m) => m[1]!);
      expect(descriptors).toEqual([TEST_DESCRIPTOR]);
      expect(parseBitcoinKeySource({ descriptor: descriptors[0] }, 'testnet').descriptor).toBe(TEST_DESCRIPTOR);
    });
  }
});

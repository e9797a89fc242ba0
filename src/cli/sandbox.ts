/**
 * Sandbox commands for the `kassa` CLI (`kassa dev` itself is in ./dev.ts):
 *
 *   kassa sandbox pay <invoice_id> [--method M] [--amount D | --partial P | --over P] [--json]
 *   kassa sandbox mine [--chain bitcoin|ethereum] [--blocks N] [--json]
 *   kassa sandbox reorg [--chain bitcoin|ethereum] [--depth N] [--double-spend <txid>] [--json]
 *   kassa sandbox scenario <name> [--method M] [--json]
 *   kassa sandbox test-key [--network regtest|testnet|signet] [--private] [--json]
 *
 * `sandbox reorg` defaults to --chain bitcoin and --depth 1. On ethereum it reverts hardhat to a
 * snapshot the sandbox took when it paid or mined (see src/sandbox/actions.ts): the dropped blocks'
 * transactions are gone, and --double-spend is for bitcoin only.
 *
 * The `sandbox …` commands talk to the running sandbox through `$KASSA_DATA_DIR/sandbox`
 * (runtime.json: URLs; state.json: the demo key). See docs/sandbox.md.
 */
import { printResult, UsageError, type Command } from './util.ts';
import { config } from './context.ts';
import { mine, pay, reorg, sandboxContext, type SandboxChain } from '../sandbox/actions.ts';
import { formatScenario, isScenario, runScenario, SCENARIOS } from '../sandbox/scenarios.ts';
import { testKey, TEST_KEY_NETWORKS, type TestKeyNetwork } from '../sandbox/test-key.ts';

function positiveInt(values: Record<string, unknown>, name: string, def: number): number {
  const v = values[name];
  if (v === undefined) return def;
  if (typeof v !== 'string' || !/^[1-9]\d*$/.test(v)) throw new UsageError(`--${name} must be a positive integer`);
  return Number(v);
}

function chainOf(v: unknown, def: SandboxChain | undefined): SandboxChain[] {
  if (v === undefined) return def ? [def] : ['bitcoin', 'ethereum'];
  if (v !== 'bitcoin' && v !== 'ethereum') throw new UsageError('--chain must be bitcoin or ethereum');
  return [v];
}

export const commands: Record<string, Command> = {
  'sandbox pay': {
    positionals: true,
    options: { method: { type: 'string' }, amount: { type: 'string' }, partial: { type: 'string' }, over: { type: 'string' }, json: { type: 'boolean' } },
    async run(values, positionals) {
      const invoiceId = positionals[0];
      if (!invoiceId || positionals.length > 1) throw new UsageError('usage: kassa sandbox pay <invoice_id> [--method M] [--amount D | --partial P | --over P]');
      const given = ['amount', 'partial', 'over'].filter((k) => values[k] !== undefined);
      if (given.length > 1) throw new UsageError(`pass only one of --amount, --partial, --over (got ${given.map((g) => '--' + g).join(', ')})`);
      const ctx = sandboxContext(config().dataDir);
      const r = await pay(ctx, invoiceId, {
        ...(typeof values.method === 'string' ? { method: values.method } : {}),
        ...(typeof values.amount === 'string' ? { amount: values.amount } : {}),
        ...(typeof values.partial === 'string' ? { partial: values.partial } : {}),
        ...(typeof values.over === 'string' ? { over: values.over } : {}),
      });
      printResult(Boolean(values.json), r, `paid ${r.amount} ${r.asset} (${r.method}) to ${r.address}\ntx ${r.txid}`);
    },
  },

  'sandbox mine': {
    options: { chain: { type: 'string' }, blocks: { type: 'string' }, json: { type: 'boolean' } },
    async run(values) {
      const blocks = positiveInt(values, 'blocks', 1);
      const ctx = sandboxContext(config().dataDir);
      const results = [];
      for (const chain of chainOf(values.chain, undefined)) results.push(await mine(ctx, chain, blocks));
      printResult(Boolean(values.json), { mined: results }, results.map((r) => `mined ${r.blocks} ${r.chain} block(s); tip ${r.tip}`).join('\n'));
    },
  },

  'sandbox reorg': {
    options: { chain: { type: 'string' }, depth: { type: 'string' }, 'double-spend': { type: 'string', multiple: true }, json: { type: 'boolean' } },
    async run(values) {
      const [chain] = chainOf(values.chain, 'bitcoin');
      const depth = positiveInt(values, 'depth', 1);
      const ctx = sandboxContext(config().dataDir);
      const doubleSpend = (values['double-spend'] as unknown as string[] | undefined) ?? [];
      if (chain === 'ethereum' && doubleSpend.length > 0) throw new UsageError('--double-spend is for --chain bitcoin only (an EVM reorg drops the transactions of the dropped blocks anyway)');
      const r = await reorg(ctx, chain!, depth, { doubleSpend });
      const dropped = r.dropped_transactions;
      printResult(Boolean(values.json), r,
        `reorg of depth ${r.depth} on ${r.chain}: tip ${r.old_tip.height} ${r.old_tip.hash} → ${r.new_tip.height} ${r.new_tip.hash}` +
        (r.depth !== r.requested_depth ? `\n(asked for depth ${r.requested_depth}; the nearest sandbox snapshot was ${r.depth} blocks below the old tip)` : '') +
        r.replaced.map((x) => `\ndouble-spent ${x.txid} → ${x.replacement}`).join('') +
        (dropped === undefined ? '' :
          `\n${dropped.length} transaction(s) in the dropped blocks` +
          (dropped.length ? ` are gone (hardhat does not return them to a mempool; they are not in the new blocks):${dropped.map((t) => `\n  ${t}`).join('')}` : '')));
    },
  },

  'sandbox scenario': {
    positionals: true,
    options: { method: { type: 'string' }, json: { type: 'boolean' } },
    async run(values, positionals) {
      const name = positionals[0];
      if (!name || !isScenario(name)) throw new UsageError(`usage: kassa sandbox scenario <name>; names: ${SCENARIOS.join(', ')}`);
      const dataDir = config().dataDir;
      const ctx = sandboxContext(dataDir);
      const json = Boolean(values.json);
      const r = await runScenario(ctx, dataDir, name, {
        ...(typeof values.method === 'string' ? { method: values.method } : {}),
        ...(json ? {} : { log: (line: string) => process.stdout.write(line + '\n') }),
      });
      printResult(json, r, formatScenario(r));
      if (!r.ok) process.exit(1);
    },
  },

  'sandbox test-key': {
    options: { network: { type: 'string' }, private: { type: 'boolean' }, json: { type: 'boolean' } },
    async run(values) {
      const network = (values.network as string | undefined) ?? 'regtest';
      if (!(TEST_KEY_NETWORKS as readonly string[]).includes(network)) {
        throw new UsageError(`--network must be one of: ${TEST_KEY_NETWORKS.join(', ')} (test-key never makes a key for mainnet: use your own wallet's xpub there)`);
      }
      const k = testKey(network as TestKeyNetwork);
      const out = { network: k.network, address_type: k.address_type, xpub: k.xpub, descriptor: k.descriptor, first_addresses: k.first_addresses, ...(values.private ? { tprv: k.tprv } : {}) };
      printResult(
        Boolean(values.json),
        out,
        [
          `A new random Bitcoin ${k.network} test key (BIP84 account ${k.path}, native SegWit). For trying Kassa only: never for real funds.`,
          `xpub        ${k.xpub}`,
          `descriptor  ${k.descriptor}`,
          `first receive addresses: ${k.first_addresses.map((a) => `${a.index} ${a.address}`).join(', ')}`,
          '',
          'Register it as the merchant\'s Bitcoin payment method:',
          `  curl -s -X PUT $API/v1/merchant/payment_methods/bitcoin -H "Authorization: Bearer $KEY" \\`,
          `    -H "Content-Type: application/json" -d '{"xpub": "${k.xpub}", "address_type": "p2wpkh"}'`,
          'and check that the first_addresses it answers are the ones above.',
          values.private
            ? `account private key (tprv, ${k.network} only; keep it to spend what this key receives): ${k.tprv}`
            : 'The private key is not kept (add --private to print it, e.g. to spend test coins sent to these addresses).',
        ].join('\n'),
      );
    },
  },
};

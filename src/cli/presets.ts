/**
 * `kassa chains presets [--json]`: the built-in EVM chain presets (src/chains/evm/presets.ts) a
 * chains-file entry can start from with `"preset": "<key>"`. Reads no configuration and opens no
 * connection.
 */
import { EVM_PRESETS, type EvmPreset } from '../chains/evm/presets.ts';
import { printResult, type Command } from './util.ts';

function describePresets(presets: Record<string, EvmPreset>): string {
  const lines: string[] = [];
  for (const [key, p] of Object.entries(presets)) {
    const c = p.confirmations;
    lines.push(
      `${key.padEnd(17)} ${p.name}${p.testnet ? ' (test network)' : ''}, chain id ${p.chain_id}, ${p.native_symbol}, blocks every ${p.block_time_ms / 1000} s`,
      `${' '.repeat(18)}confirmations high/medium/low_medium/low: ${c.high}/${c.medium}/${c.low_medium}/${c.low}${p.use_finalized_tag ? ', "finalized" block counts as confirmed' : ''}; logs ${p.max_log_range} blocks per call`,
      `${' '.repeat(18)}tokens: ${p.tokens.map((t) => `${t.symbol} ${t.address} (${t.decimals} decimals)`).join(', ') || 'none'}`,
      `${' '.repeat(18)}explorer: ${p.explorer_url}${p.public_rpc_url ? `; public RPC (rate-limited): ${p.public_rpc_url}` : ''}`,
    );
  }
  lines.push('', 'Use one in the chains file (KASSA_CONFIG), overriding any field:', '  "base": { "preset": "base", "rpc_url": "https://…", "factory": "0x…", "implementation": "0x…" }');
  return lines.join('\n');
}

export const commands: Record<string, Command> = {
  'chains presets': {
    options: { json: { type: 'boolean' } },
    async run(values) {
      printResult(Boolean(values.json), { object: 'list', data: Object.entries(EVM_PRESETS).map(([key, p]) => ({ key, ...p })) }, describePresets(EVM_PRESETS));
    },
  },
};

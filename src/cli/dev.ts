/** `kassa dev` (npm run dev): the sandbox, src/sandbox/dev.ts. */
import { UsageError, type Command } from './util.ts';
import { config } from './context.ts';
import { runSandbox } from '../sandbox/dev.ts';

function port(values: Record<string, unknown>, name: string): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v) || Number(v) > 65535) throw new UsageError(`--${name} must be a port number (0 = any free port)`);
  return Number(v);
}

export const commands: Record<string, Command> = {
  dev: {
    options: { 'bitcoin-port': { type: 'string' }, 'evm-port': { type: 'string' }, 'webhook-port': { type: 'string' } },
    async run(values) {
      const cfg = config();
      const code = await runSandbox(cfg, {
        bitcoinPort: port(values, 'bitcoin-port'),
        evmPort: port(values, 'evm-port'),
        webhookPort: port(values, 'webhook-port'),
        // The children get this environment (PATH, DATABASE_URL, REDIS_URL, …) plus KASSA_CONFIG.
        env: process.env,
      });
      process.exit(code);
    },
  },
};

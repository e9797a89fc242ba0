/** `kassa devnet bitcoin`: the local Bitcoin regtest devnet (the sandbox runs it as a child). */
import type { Command } from './util.ts';
import { main as devnetMain } from '../sandbox/devnet/bitcoin/main.ts';

export const commands: Record<string, Command> = {
  'devnet bitcoin': {
    options: { port: { type: 'string' }, host: { type: 'string' }, rpcuser: { type: 'string' }, rpcpassword: { type: 'string' }, seed: { type: 'string' }, premine: { type: 'string' } },
    async run() {
      await devnetMain(process.argv.slice(4));
    },
  },
};

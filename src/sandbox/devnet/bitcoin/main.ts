/**
 * Executable entry of the Bitcoin regtest devnet:
 *
 *   node --import tsx src/sandbox/devnet/bitcoin/main.ts [--port N] [--host H] [--rpcuser U]
 *        [--rpcpassword P] [--seed HEX] [--premine N] [--fullrbf]
 *
 * Prints one JSON line when listening:
 *   {"rpc_url":"http://127.0.0.1:18443/","esplora_url":"http://127.0.0.1:18443/esplora","rpc_user":"kassa","rpc_password":"kassa"}
 * and stops on SIGTERM/SIGINT. State is in memory only.
 */
import { pathToFileURL } from 'node:url';
import { startBitcoinDevnet, type BitcoinDevnetOptions } from './server.ts';

export function parseDevnetArgs(argv: string[]): BitcoinDevnetOptions {
  const opts: BitcoinDevnetOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const int = (v: string): number => {
      if (!/^\d+$/.test(v)) throw new Error(`${flag} must be a non-negative integer, got '${v}'`);
      return Number(v);
    };
    switch (flag) {
      case '--port': opts.port = int(value()); break;
      case '--host': opts.host = value(); break;
      case '--rpcuser': opts.rpcUser = value(); break;
      case '--rpcpassword': opts.rpcPassword = value(); break;
      case '--seed': opts.seed = value(); break;
      case '--premine': opts.premine = int(value()); break;
      case '--fullrbf': opts.fullRbf = true; break;
      default: throw new Error(`unknown argument '${arg}'`);
    }
  }
  return opts;
}

export async function main(argv: string[]): Promise<void> {
  const devnet = await startBitcoinDevnet(parseDevnetArgs(argv));
  process.stdout.write(
    `${JSON.stringify({ rpc_url: devnet.url, esplora_url: devnet.esploraUrl, rpc_user: devnet.rpcUser, rpc_password: devnet.rpcPassword })}\n`,
  );
  const shutdown = (): void => {
    void devnet.stop().finally(() => process.exit(0));
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

const isEntry = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isEntry) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`bitcoin devnet: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

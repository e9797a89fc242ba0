/**
 * The `kassa` command. Human output by default; `--json` prints one JSON object on stdout.
 * Errors: one line on stderr and a non-zero exit code (2 for usage errors).
 */
import { parseArgs } from 'node:util';
import { fail, UsageError } from './util.ts';
import { commands as baseCommands } from './commands.ts';
import { evmCommands } from './evm.ts';
import { userCommands } from './users.ts';
import { sandboxCommands } from './sandbox.ts';
import { chainCommands } from './chains.ts';
import { listenCommands } from './listen.ts';

const commands = { ...baseCommands, ...evmCommands, ...chainCommands, ...sandboxCommands, ...userCommands, ...listenCommands };

const HELP = `kassa — self-hosted, non-custodial crypto payments

Usage: kassa <command> [options]

Commands:
  migrate                                   create the database if needed and apply migrations
  serve                                     run the HTTP API (applies pending migrations first)
  worker                                    run the background workers (chain watchers, settlement, webhooks)
  merchants create --name <name> [--json]   create a merchant and its first API key (all scopes)
  api-keys create --merchant <id> --scopes <s1,s2> [--name <n>] [--json]
  api-keys revoke --merchant <id> --key <key_id> [--json]
  reconcile --merchant <id> --from <date> --to <date> [--csv <file>] [--json]
                                            reconciliation report for a period (see docs/reconciliation.md)
  evm deploy --chain <key> (--key-file <file> | --private-key 0x…) [--test-tokens] [--json]
                                            deploy the forwarder factory (and test tokens on a local chain)
  evm sweep --invoice <id> (--key-file <file> | --private-key 0x…) [--json]
                                            move an invoice's deposits to the merchant treasury
  chains rewind --chain <key> --height <n> [--json]
                                            move a chain's cursor back below a fork (recovery from
                                            reorg_too_deep; stop the workers first; docs/operations.md)
  users create --merchant <id> --email <e-mail> --role <owner|developer|finance|viewer> [--json]
                                            create a dashboard user; prints a one-time setup link (24 h)
  users setup-link --merchant <id> --user <usr_id> [--json]
                                            a new setup link (lost link or password reset)
  devnet bitcoin [--port <n>]               run the local Bitcoin regtest devnet (in memory)
  dev [--bitcoin-port <n>] [--evm-port <n>] [--webhook-port <n>]
                                            the sandbox (npm run dev): local chains, API, workers, demo merchant
  sandbox pay <invoice_id> [--method BTC|ETH-ethereum|USDC-ethereum|USDT-ethereum]
              [--amount <decimal> | --partial <percent> | --over <percent>] [--json]
                                            pay an invoice from the sandbox wallets
  sandbox mine [--chain bitcoin|ethereum] [--blocks <n>] [--json]
                                            mine blocks on the sandbox chains (both by default)
  sandbox reorg --chain bitcoin|ethereum --depth <n> [--double-spend <txid>] [--json]
                                            replace the last <n> blocks (ethereum: back to a sandbox
                                            snapshot; transactions in dropped blocks are gone)
  sandbox scenario <paid|partial-then-topup|overpaid|expired|late|reorg> [--method <m>] [--json]
                                            run an end-to-end scenario against the running sandbox
  listen --forward-to <url> [--events <t1,t2>] [--api-key <key>] [--url <kassa url>] [--secret whsec_…]
                                            forward this merchant's events to a local URL, signed like
                                            webhooks (API key: KASSA_API_KEY; server: KASSA_URL)

Configuration comes from the environment; see docs/configuration.md.`;

async function main(argv: string[]): Promise<void> {
  const [group, sub, ...rest] = argv;
  if (!group || group === 'help' || group === '--help' || group === '-h') {
    process.stdout.write(HELP + '\n');
    return;
  }
  const candidates = [`${group} ${sub ?? ''}`.trim(), group];
  for (const name of candidates) {
    const cmd = commands[name];
    if (!cmd) continue;
    const args = name === group ? argv.slice(1) : rest;
    let parsed;
    try {
      parsed = parseArgs({ args, options: cmd.options ?? {}, allowPositionals: cmd.positionals ?? false, strict: true });
    } catch (err) {
      throw new UsageError(`${(err as Error).message}. Run "kassa help".`);
    }
    await cmd.run(parsed.values as Record<string, string | boolean | undefined>, parsed.positionals);
    return;
  }
  throw new UsageError(`unknown command "${argv.join(' ')}". Run "kassa help".`);
}

main(process.argv.slice(2)).catch(fail);

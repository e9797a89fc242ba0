/**
 * Every `kassa` command: its arguments, help text and a loader. The module with a command's code is
 * imported only when that command runs (src/cli/main.ts), so `kassa help` and `kassa <command>
 * --help` load nothing but main.ts, this file and ./util.ts.
 * To add a command: a module exporting `commands: Record<string, Command>` and one entry here.
 */
import type { Command } from './util.ts';

type Loader = () => Promise<{ commands: Record<string, Command> }>;

const admin: Loader = () => import('./commands.ts');
const processes: Loader = () => import('./processes.ts');
const users: Loader = () => import('./users.ts');
const evm: Loader = () => import('./evm.ts');
const chains: Loader = () => import('./chains.ts');
const presets: Loader = () => import('./presets.ts');
const sandbox: Loader = () => import('./sandbox.ts');
const dev: Loader = () => import('./dev.ts');
const devnet: Loader = () => import('./devnet.ts');
const listen: Loader = async () => ({ commands: (await import('./listen.ts')).listenCommands as unknown as Record<string, Command> });

export interface CommandInfo {
  /** Arguments after the command name, as shown in help. */
  args: string;
  summary: string;
  /** More lines for `kassa <command> --help`. */
  details?: string;
  load: Loader;
}

const FOLLOWS_SANDBOX =
  'Uses the running sandbox (npm run dev) of this data folder ($KASSA_DATA_DIR, .kassa by default) unless\n' +
  'DATABASE_URL etc. are set, and says which database it uses on stderr.';
const READ_ONLY = 'Never creates or migrates a database: a missing or outdated one is an error (run "kassa migrate").';

export const COMMANDS: Record<string, CommandInfo> = {
  migrate: { args: '[--json]', summary: 'create the database if needed and apply migrations', details: FOLLOWS_SANDBOX, load: admin },
  serve: { args: '', summary: 'run the HTTP API (applies pending migrations first)', details: 'Configuration from the environment only (docs/configuration.md).', load: processes },
  worker: { args: '', summary: 'run the background workers (chain watchers, settlement, webhooks)', details: 'Configuration from the environment only (docs/configuration.md).', load: processes },
  'merchants create': {
    args: '--name <name> [--json]',
    summary: 'create a merchant and its first API key (all scopes; the secret is shown once)',
    details: `Creates and migrates the database if needed.\n${FOLLOWS_SANDBOX}`,
    load: admin,
  },
  'merchants list': { args: '[--limit <n>] [--json]', summary: 'list merchants, newest first (default limit 100)', details: `${READ_ONLY}\n${FOLLOWS_SANDBOX}`, load: admin },
  'api-keys create': {
    args: '--merchant <id> --scopes <s1,s2> [--name <n>] [--json]',
    summary: 'create an API key (scopes: invoices:read, invoices:write, reports:read, webhooks:write, settings:write)',
    details: FOLLOWS_SANDBOX,
    load: admin,
  },
  'api-keys list': { args: '--merchant <id> [--limit <n>] [--json]', summary: "list a merchant's API keys (never their secrets)", details: `${READ_ONLY}\n${FOLLOWS_SANDBOX}`, load: admin },
  'api-keys revoke': { args: '--merchant <id> --key <key_id> [--json]', summary: 'revoke an API key at once', details: `${READ_ONLY}\n${FOLLOWS_SANDBOX}`, load: admin },
  reconcile: {
    args: '--merchant <id> --from <date> --to <date> [--csv <file>] [--json]',
    summary: 'reconciliation report for a period (see docs/reconciliation.md)',
    details: `Dates are ISO-8601 dates or times, --from before --to.\n${READ_ONLY}\n${FOLLOWS_SANDBOX}`,
    load: admin,
  },
  'evm deploy': {
    args: '--chain <key> (--key-file <file> | --private-key 0x…) [--test-tokens] [--json]',
    summary: 'deploy the forwarder factory (and test tokens on a local chain)',
    details: `The key is never printed or logged; prefer --key-file (not visible in ps or shell history).\n${FOLLOWS_SANDBOX}`,
    load: evm,
  },
  'evm sweep': {
    args: '--invoice <id> [--chain <key>] (--key-file <file> | --private-key 0x…) [--force] [--json]',
    summary: "move an invoice's deposits to the merchant treasury",
    details: FOLLOWS_SANDBOX,
    load: evm,
  },
  'chains rewind': {
    args: '--chain <key> --height <n> [--json]',
    summary: "move a chain's cursor back below a fork (recovery from reorg_too_deep)",
    details: `Stop the workers first; see docs/operations.md.\n${FOLLOWS_SANDBOX}`,
    load: chains,
  },
  'chains presets': {
    args: '[--json]',
    summary: 'list the built-in EVM chain presets (Ethereum, Base, Arbitrum, OP, Polygon and test networks)',
    details: 'A chains-file entry { "preset": "base", "rpc_url": "…" } starts from one and may override any field; see docs/configuration.md.',
    load: presets,
  },
  'users create': {
    args: '--merchant <id> --email <e-mail> --role <owner|developer|finance|viewer> [--json]',
    summary: 'create a dashboard user; prints a one-time setup link (24 h)',
    details: `The link uses PUBLIC_URL (the sandbox's API URL when following the sandbox).\n${FOLLOWS_SANDBOX}`,
    load: users,
  },
  'users setup-link': { args: '--merchant <id> --user <usr_id> [--json]', summary: 'a new setup link (lost link or password reset)', details: FOLLOWS_SANDBOX, load: users },
  'users list': { args: '--merchant <id> [--limit <n>] [--json]', summary: "list a merchant's dashboard users (role, status, 2FA, last login)", details: `${READ_ONLY}\n${FOLLOWS_SANDBOX}`, load: users },
  'devnet bitcoin': { args: '[--port <n>]', summary: 'run the local Bitcoin regtest devnet (in memory)', load: devnet },
  dev: {
    args: '[--bitcoin-port <n>] [--evm-port <n>] [--webhook-port <n>]',
    summary: 'the sandbox (npm run dev): local chains, API, workers, demo merchant',
    details: 'See docs/sandbox.md. Other terminals: kassa sandbox pay|mine|reorg|scenario, and every command above follows it.',
    load: dev,
  },
  'sandbox pay': {
    args: '<invoice_id> [--method BTC|ETH-ethereum|USDC-ethereum|USDT-ethereum] [--amount <decimal> | --partial <percent> | --over <percent>] [--json]',
    summary: "pay any merchant's invoice in the running sandbox from the sandbox wallets",
    load: sandbox,
  },
  'sandbox mine': { args: '[--chain bitcoin|ethereum] [--blocks <n>] [--json]', summary: 'mine blocks on the sandbox chains (both by default)', load: sandbox },
  'sandbox reorg': {
    args: '--chain bitcoin|ethereum --depth <n> [--double-spend <txid>] [--json]',
    summary: 'replace the last <n> blocks',
    details: 'ethereum: back to a sandbox snapshot; transactions in dropped blocks are gone.',
    load: sandbox,
  },
  'sandbox scenario': {
    args: '<paid|partial-then-topup|overpaid|expired|late|reorg> [--method <m>] [--json]',
    summary: 'run an end-to-end scenario against the running sandbox',
    load: sandbox,
  },
  'sandbox test-key': {
    args: '[--network regtest|testnet|signet] [--private] [--json]',
    summary: 'print a new Bitcoin test key (tpub, descriptor, first addresses) to try the integration guide',
    details: 'Never for mainnet. The key is random and not kept; --private also prints its tprv.',
    load: sandbox,
  },
  listen: {
    args: '--forward-to <url> [--events <t1,t2>] [--api-key <key>] [--url <kassa url>] [--secret whsec_…]',
    summary: "forward this merchant's events to a local URL, signed like webhooks",
    details: 'API key: --api-key or KASSA_API_KEY; server: --url or KASSA_URL (default http://localhost:3000).\nPrints the signing secret at start, then one line per delivery; resumes after the last event on reconnect.',
    load: listen,
  },
};

export function usageLine(name: string, info: CommandInfo): string {
  return `kassa ${name}${info.args ? ` ${info.args}` : ''}`;
}

export function helpText(): string {
  const lines = ['kassa — self-hosted, non-custodial crypto payments', '', 'Usage: kassa <command> [options]     (kassa <command> --help for more)', '', 'Commands:'];
  for (const [name, info] of Object.entries(COMMANDS)) {
    const head = `  ${name}${info.args ? ` ${info.args}` : ''}`;
    lines.push(head.length <= 44 ? `${head.padEnd(44)}${info.summary}` : `${head}\n${' '.repeat(44)}${info.summary}`);
  }
  lines.push('', 'Configuration comes from the environment; see docs/configuration.md.');
  return lines.join('\n');
}

export function commandHelp(name: string, info: CommandInfo): string {
  return [`Usage: ${usageLine(name, info)}`, '', `${info.summary[0]!.toUpperCase()}${info.summary.slice(1)}.`, ...(info.details ? [info.details] : [])].join('\n');
}

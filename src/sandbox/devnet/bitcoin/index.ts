export { startBitcoinDevnet, type BitcoinDevnet, type BitcoinDevnetOptions } from './server.ts';
export { DevnetChain, REGTEST_GENESIS_HASH, COINBASE_MATURITY } from './chain.ts';
export { devnetRpcMethods, callDevnetMethod } from './rpc-methods.ts';
export { DEFAULT_DEVNET_SEED } from './wallet.ts';
export { parseDevnetArgs, main as runBitcoinDevnetMain } from './main.ts';

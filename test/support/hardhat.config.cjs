// Minimal Hardhat 2 config used only to run `hardhat node` as the local chain for tests and the
// sandbox (test/support/hardhat.ts). No Solidity config and an empty, temp sources dir, so Hardhat
// never tries to download a compiler (contracts are compiled with the solc npm package instead).
const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');

const tmp = path.join(os.tmpdir(), 'kassa-hardhat');
const sources = path.join(tmp, 'sources');
fs.mkdirSync(sources, { recursive: true });

/** @type {import('hardhat/config').HardhatUserConfig} */
module.exports = {
  defaultNetwork: 'hardhat',
  networks: {
    hardhat: {
      // KASSA_HARDHAT_CHAIN_ID: a second node posing as another network (startHardhatNode({ chainId })).
      chainId: Number(process.env.KASSA_HARDHAT_CHAIN_ID || 31337),
      // The well-known dev mnemonic: accounts 0..19 with 10,000 ETH each.
      accounts: { mnemonic: 'test test test test test test test test test test test junk', count: 20 },
      mining: { auto: true },
      loggingEnabled: false,
    },
  },
  paths: {
    root: __dirname,
    sources,
    cache: path.join(tmp, 'cache'),
    artifacts: path.join(tmp, 'artifacts'),
    tests: path.join(tmp, 'tests'),
  },
};

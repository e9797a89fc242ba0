// Minimal Hardhat 2 config used only to run `hardhat node` as the sandbox's local EVM chain
// (src/sandbox/hardhat.ts; same settings as test/support/hardhat.config.cjs). No Solidity config and an empty, temp sources dir, so Hardhat
// never tries to download a compiler (contracts are compiled with the solc npm package instead).
const os = require('node:os');
const path = require('node:path');
const fs = require('node:fs');

const tmp = path.join(os.tmpdir(), 'kassa-sandbox-hardhat');
const sources = path.join(tmp, 'sources');
fs.mkdirSync(sources, { recursive: true });

/** @type {import('hardhat/config').HardhatUserConfig} */
module.exports = {
  defaultNetwork: 'hardhat',
  networks: {
    hardhat: {
      chainId: 31337,
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

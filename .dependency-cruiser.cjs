/**
 * Import rules (docs/architecture.md §3, §8). Checked by `npm run check:imports` and by `npm test`
 * (test/unit/dependencies.test.ts); any violation fails both.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycles: a module never imports, directly or indirectly, something that imports it.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'production-not-to-sandbox',
      severity: 'error',
      comment:
        'Production code (src/, workers/) never imports src/sandbox/: the sandbox, the Bitcoin devnet (src/sandbox/devnet/) and the ' +
        'test tokens with their contract artifacts are development tools. Only the CLI commands that start them (src/cli/dev.ts, ' +
        'devnet.ts, sandbox.ts) import them, loaded only when such a command runs; `kassa evm deploy --test-tokens` has its own rule.',
      from: { path: ['^src/', '^workers/'], pathNot: ['^src/sandbox/', '^src/cli/(dev|devnet|sandbox|evm)\\.ts$'] },
      to: { path: '^src/sandbox/' },
    },
    {
      name: 'cli-evm-only-test-tokens',
      severity: 'error',
      comment: '`kassa evm deploy --test-tokens` loads the test tokens (src/sandbox/test-tokens.ts) and nothing else of the sandbox.',
      from: { path: '^src/cli/evm\\.ts$' },
      to: { path: '^src/sandbox/', pathNot: '^src/sandbox/test-tokens\\.ts$' },
    },
    {
      name: 'api-not-to-workers',
      severity: 'error',
      comment: 'The API process (src/server.ts, src/api/) never imports the worker processes (workers/).',
      from: { path: ['^src/server\\.ts$', '^src/api/'] },
      to: { path: '^workers/' },
    },
    {
      name: 'settlement-not-to-chain-families',
      severity: 'error',
      comment: 'Settlement decides what observations mean for invoices; it never imports chain family code (src/chains/bitcoin, src/chains/evm).',
      from: { path: '^src/settlement/' },
      to: { path: '^src/chains/(bitcoin|evm)/' },
    },
    {
      name: 'invoices-not-to-settlement',
      severity: 'error',
      comment:
        'Settlement recomputes invoices and uses the invoice object (src/invoices/present.ts, status.ts, events.ts); invoice commands get ' +
        "settlement's recompute injected (InvoiceRecompute), so src/invoices never imports src/settlement.",
      from: { path: '^src/invoices/' },
      to: { path: '^src/settlement/' },
    },
    {
      name: 'chains-not-to-api',
      severity: 'error',
      comment: 'Chain code turns chain data into typed observations; HTTP routes live in src/api/routes/, so src/chains never imports src/api.',
      from: { path: '^src/chains/' },
      to: { path: '^src/api/' },
    },
    {
      name: 'src-not-to-test',
      severity: 'error',
      comment: 'Nothing in src/ or workers/ imports test code (test/support/ holds the harness and the test-only contract artifacts).',
      from: { path: ['^src/', '^workers/'] },
      to: { path: '^test/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: ['^node_modules', '^dist/'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
    moduleSystems: ['es6', 'cjs'],
  },
};

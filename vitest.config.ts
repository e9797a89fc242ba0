import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts', 'contracts/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    // Integration tests run real processes (devnet, hardhat, Chromium, CLI subprocesses) on 2
    // shared cores; one retry keeps a rare environmental hiccup from failing CI. vitest reports
    // every retried test ("retry x1"), so a flaky test stays visible and gets investigated.
    retry: 1,
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['test/support/setup.ts'],
  },
});

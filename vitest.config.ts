import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', '.tools/**', '.rover/**'],
    globalSetup: ['test/globalSetup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: end-to-end files each start real processes; run files one at a time.
    fileParallelism: false,
    reporters: ['default'],
  },
});

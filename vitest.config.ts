import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // OpenCV's addon supports one thread per process: each test file gets its own process.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests run real video through real models on 2 cores: keep them from competing.
    fileParallelism: false,
  },
});

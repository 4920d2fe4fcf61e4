// Two projects: `unit` (pure logic, no processes) and `integration` (the built CLI against a real control plane).
import { defineConfig } from 'vitest/config';

// The developer's own cluster settings must never leak into a test.
const isolatedEnv = {
  KUBECONFIG: '', KUBERNETES_SERVICE_HOST: '', KUBERNETES_SERVICE_PORT: '', POD_NAME: '', POD_NAMESPACE: '',
};

export default defineConfig({
  test: {
    env: isolatedEnv,
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: ['test/**/*.integration.test.ts'] },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.integration.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Each file gets its own namespace; two at a time keeps two cores busy without starving the API server.
          maxWorkers: 2,
        },
      },
    ],
  },
});

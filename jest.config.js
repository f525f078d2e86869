/** Jest runs the TypeScript sources as native ESM through swc (see README, "Testing"). */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
  },
  // Sources import siblings as `./x.js` (NodeNext); map them back to the `.ts` file.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  setupFiles: ['<rootDir>/test/setup.ts'],
  testTimeout: 60_000,
  // Most suites wait on child processes (data-mover Jobs, the local cluster's servers) rather than
  // compute, so one worker per core finishes sooner than Jest's default of cores - 1.
  maxWorkers: '100%',
};

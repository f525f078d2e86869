// aws-local-stepfunctions needs Promise.withResolvers, which Node 20 lacks.
import '../local/workflows/promise-with-resolvers.js';

// Test-wide environment. AWS SDK clients (even mocked ones) read a region; no test may reach AWS.
process.env.AWS_REGION ??= 'us-east-1';
process.env.AWS_ACCESS_KEY_ID ??= 'AKIDTESTONLY';
process.env.AWS_SECRET_ACCESS_KEY ??= 'test-only-secret';
process.env.POWERTOOLS_DEV ??= 'false';
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';


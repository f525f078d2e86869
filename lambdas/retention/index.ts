/**
 * Lambda entry point of the retention steps: cold start reads the environment and the baked
 * config and builds the AWS collaborators once. CDK makes one function per state from this
 * bundle; `MILVUS_GUARD_STEP` names the state a function serves, and `handler` is its handler.
 */
import { bakedConfig } from '../shared/baked-config.js';
import { readEnvironment } from '../shared/environment.js';
import { RetentionStepEnvironment } from './environment.js';
import { makeRetentionStepHandlers, type RetentionStepState } from './handlers.js';
import { awsRetentionServices } from './services.js';

const env = readEnvironment(RetentionStepEnvironment);
export const handler = makeRetentionStepHandlers({
  services: awsRetentionServices(bakedConfig(), env),
  vault: { name: env.VAULT_NAME },
  serviceName: env.POWERTOOLS_SERVICE_NAME,
  metricsNamespace: env.POWERTOOLS_METRICS_NAMESPACE,
  logLevel: env.POWERTOOLS_LOG_LEVEL,
  // The schema allows exactly the states of this bundle (core/workflow/steps.ts).
})[env.MILVUS_GUARD_STEP as RetentionStepState];

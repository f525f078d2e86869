/**
 * Lambda entry point of the restore and drill steps: cold start reads the environment and the
 * baked config and builds the AWS collaborators once. CDK makes one function per state from
 * this bundle; `MILVUS_GUARD_STEP` names the state a function serves, and `handler` is that
 * state's handler.
 */
import { bakedConfig } from '../shared/baked-config.js';
import { readEnvironment } from '../shared/environment.js';
import { RestoreStepEnvironment } from './environment.js';
import { makeRestoreStepHandlers, type RestoreStepState } from './handlers.js';
import { awsRestoreServices } from './services.js';

const env = readEnvironment(RestoreStepEnvironment);
export const handler = makeRestoreStepHandlers({
  services: awsRestoreServices(bakedConfig(), env),
  vault: { name: env.VAULT_NAME, bucket: env.VAULT_BUCKET },
  serviceName: env.POWERTOOLS_SERVICE_NAME,
  metricsNamespace: env.POWERTOOLS_METRICS_NAMESPACE,
  logLevel: env.POWERTOOLS_LOG_LEVEL,
  // The schema allows exactly the states of this bundle (core/workflow/steps.ts).
})[env.MILVUS_GUARD_STEP as RestoreStepState];

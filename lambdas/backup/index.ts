/**
 * Lambda entry point of the backup steps: cold start reads the environment and the baked config
 * and builds the AWS collaborators once. CDK makes one function per state from this bundle;
 * `MILVUS_GUARD_STEP` names the state a function serves, and `handler` is that state's handler.
 */
import { bakedConfig } from '../shared/baked-config.js';
import { readEnvironment } from '../shared/environment.js';
import { BackupStepEnvironment } from './environment.js';
import { makeStepHandlers, type BackupStepState } from './handlers.js';
import { awsBackupServices } from './services.js';

const env = readEnvironment(BackupStepEnvironment);
export const handler = makeStepHandlers({
  services: awsBackupServices(bakedConfig(), env),
  serviceName: env.POWERTOOLS_SERVICE_NAME,
  metricsNamespace: env.POWERTOOLS_METRICS_NAMESPACE,
  logLevel: env.POWERTOOLS_LOG_LEVEL,
  // The schema allows exactly the states of this bundle (core/workflow/steps.ts).
})[env.MILVUS_GUARD_STEP as BackupStepState];

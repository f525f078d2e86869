/**
 * Lambda entry points of the restore and drill steps: cold start reads the environment and the
 * baked config and builds the AWS collaborators once; each export is one Task's handler (CDK
 * makes one function per export, all from this bundle).
 */
import { bakedConfig } from '../shared/baked-config.js';
import { readEnvironment } from '../shared/environment.js';
import { RestoreStepEnvironment } from './environment.js';
import { makeRestoreStepHandlers } from './handlers.js';
import { awsRestoreServices } from './services.js';

const env = readEnvironment(RestoreStepEnvironment);
const handlers = makeRestoreStepHandlers({
  services: awsRestoreServices(bakedConfig(), env),
  vault: { name: env.VAULT_NAME, bucket: env.VAULT_BUCKET },
  serviceName: env.POWERTOOLS_SERVICE_NAME,
  metricsNamespace: env.POWERTOOLS_METRICS_NAMESPACE,
  logLevel: env.POWERTOOLS_LOG_LEVEL,
});

export const {
  prepareRestore,
  verifyBackup,
  createNamespace,
  startVolumes,
  checkVolumes,
  applyManifests,
  checkReadiness,
  validateRestore,
  completeRestore,
  cleanupRestore,
  failRestore,
  prepareDrill,
  cleanupDrill,
  recordDrill,
} = handlers;

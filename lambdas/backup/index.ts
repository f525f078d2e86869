/**
 * Lambda entry points of the backup steps: cold start reads the environment and the baked
 * config and builds the AWS collaborators once; each export is one Task's handler (CDK makes
 * one function per export, all from this bundle).
 */
import { bakedConfig } from '../shared/baked-config.js';
import { readEnvironment } from '../shared/environment.js';
import { BackupStepEnvironment } from './environment.js';
import { makeStepHandlers } from './handlers.js';
import { awsBackupServices } from './services.js';

const env = readEnvironment(BackupStepEnvironment);
const handlers = makeStepHandlers({
  services: awsBackupServices(bakedConfig(), env),
  serviceName: env.POWERTOOLS_SERVICE_NAME,
  metricsNamespace: env.POWERTOOLS_METRICS_NAMESPACE,
  logLevel: env.POWERTOOLS_LOG_LEVEL,
});

export const { discover, startFlush, checkFlush, pauseGc, hooks, capture, createSnapshots, checkSnapshots, unquiesce, startExport, checkExport, finishExport, finalize, cleanup, fail } = handlers;

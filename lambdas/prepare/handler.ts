/**
 * Prepare: the first state of the backup workflow. Parses the request the state machine builds
 * (`PrepareRequest`), prepares the backup (core/workflow/prepare.ts) and returns the small
 * `PreparedBackup` every later state reads. A bad input or an unknown plan throws
 * `InvalidInputError`, whose name `InvalidInput` the workflow catches and fails with.
 */
import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Context } from 'aws-lambda';
import type { Config } from '../../core/config/schema.js';
import { parseContract, PrepareRequest, type PreparedBackup } from '../../core/workflow/contracts.js';
import { prepareBackup } from '../../core/workflow/prepare.js';
import type { PrepareEnvironment } from './environment.js';

export interface PrepareDependencies {
  readonly config: Config;
  readonly environment: PrepareEnvironment;
  /** Default: a Powertools logger for the environment's service. */
  readonly logger?: Logger;
  /** Default: Powertools metrics in the environment's namespace. */
  readonly metrics?: Metrics;
}

export function makeHandler(deps: PrepareDependencies): (event: unknown, context: Context) => Promise<PreparedBackup> {
  const env = deps.environment;
  const logger = deps.logger ?? new Logger({ serviceName: env.POWERTOOLS_SERVICE_NAME, logLevel: env.POWERTOOLS_LOG_LEVEL });
  const metrics = deps.metrics ?? new Metrics({ namespace: env.POWERTOOLS_METRICS_NAMESPACE, serviceName: env.POWERTOOLS_SERVICE_NAME });
  const vault = { name: env.VAULT_NAME, bucket: env.VAULT_BUCKET };

  return middy(async (event: unknown): Promise<PreparedBackup> => {
    const request = parseContract(PrepareRequest, event, 'the Prepare request');
    const prepared = prepareBackup(request, { config: deps.config, vault });
    logger.info('backup prepared', { plan: prepared.plan, backupName: prepared.backupName, executionId: prepared.executionId });
    metrics.addDimension('plan', prepared.plan);
    metrics.addMetric('BackupsPrepared', MetricUnit.Count, 1);
    return prepared;
  })
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics, { captureColdStartMetric: true }));
}

/**
 * Prepare: the first state of the backup workflow. Parses the request the state machine builds
 * (`PrepareRequest`), prepares the backup, takes the plan's lock and records it `InProgress`
 * (core/backup/workflow.ts) and returns the small `PreparedBackup` every later state reads. A
 * bad input or an unknown plan throws `InvalidInputError` (`InvalidInput`); a backup of the plan
 * already running throws `BackupInProgressError` (`BackupInProgress`); the workflow fails with
 * either name.
 */
import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Context } from 'aws-lambda';
import { DEFAULT_TIMINGS } from '../../core/backup/context.js';
import { prepareStep } from '../../core/backup/workflow.js';
import type { BackupCatalog } from '../../core/catalog/catalog.js';
import type { Config } from '../../core/config/schema.js';
import { METRICS } from '../../core/monitoring/metrics.js';
import type { ExecutionStatus } from '../../core/workflow/executions.js';
import { parseContract, PrepareRequest, type PreparedBackup } from '../../core/workflow/contracts.js';
import type { PrepareEnvironment } from './environment.js';

export interface PrepareDependencies {
  readonly config: Config;
  readonly environment: PrepareEnvironment;
  /** Where the lock and the backup record go. */
  readonly catalog: BackupCatalog;
  /** Whether the execution holding a plan's lock still runs. */
  readonly executions: ExecutionStatus;
  /** Default: the system clock (the lock's acquisition time and expiry). */
  readonly now?: () => Date;
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
  const services = { config: deps.config, catalog: deps.catalog, executions: deps.executions, now: deps.now ?? (() => new Date()), timings: { ...DEFAULT_TIMINGS, lockTtlSeconds: env.LOCK_TTL_SECONDS } };

  return middy(async (event: unknown): Promise<PreparedBackup> => {
    const request = parseContract(PrepareRequest, event, 'the Prepare request');
    const prepared = await prepareStep(services, vault, request);
    logger.info('backup prepared', { plan: prepared.plan, backupName: prepared.backupName, executionId: prepared.executionId });
    metrics.addDimension('plan', prepared.plan);
    metrics.addMetric(METRICS.backupsPrepared.name, MetricUnit.Count, 1);
    return prepared;
  })
    .use(injectLambdaContext(logger))
    .use(logMetrics(metrics, { captureColdStartMetric: true }));
}

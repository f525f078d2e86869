/**
 * What every workflow step handler is made of: the Powertools middleware (logger context,
 * EMF metrics), a parse of the state's request with its contract schema, and one call into
 * core. The backup, restore and drill handlers are each one `step(...)` line.
 */
import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { Context } from 'aws-lambda';
import type { z } from 'zod';
import { parseContract } from '../../core/workflow/contracts.js';

export type StepHandler = (event: unknown, context: Context) => Promise<unknown>;

/** Logging and metrics settings of a bundle of step handlers. */
export interface StepTelemetry {
  /** Powertools service name and metrics namespace. */
  readonly serviceName: string;
  readonly metricsNamespace: string;
  readonly logLevel?: string;
  /** Default: a Powertools logger for the service. */
  readonly logger?: Logger;
  /** Default: Powertools metrics in the namespace. */
  readonly metrics?: Metrics;
}

/**
 * The logger, the metrics and a `step` factory for one bundle. `ids` picks what identifies the
 * work in the "done" log line (the backup, restore or drill id).
 */
export function stepFactory(t: StepTelemetry, ids: (request: unknown) => Record<string, unknown>) {
  const logger = t.logger ?? new Logger({ serviceName: t.serviceName, ...(t.logLevel ? { logLevel: t.logLevel as never } : {}) });
  const metrics = t.metrics ?? new Metrics({ namespace: t.metricsNamespace, serviceName: t.serviceName });
  const step = <S extends z.ZodType, R>(name: string, schema: S, run: (request: z.infer<S>) => Promise<R>): StepHandler =>
    middy(async (event: unknown) => {
      const request = parseContract(schema, event, `the ${name} request`);
      const result = await run(request);
      logger.info(`${name} done`, ids(request));
      return result;
    })
      .use(injectLambdaContext(logger))
      .use(logMetrics(metrics));
  return { logger, metrics, step };
}

/**
 * What every workflow step handler is made of: the Powertools middleware (logger context,
 * EMF metrics), a parse of the state's request with its contract schema, and one call into
 * core. A bundle lists its handlers by ASL state name (core/workflow/steps.ts); that name is the
 * log label too, and the function CDK makes for a state selects its handler with the
 * `MILVUS_GUARD_STEP` variable.
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

/** One state's handler before the middleware: its request schema and the call into core. */
export interface StepSpec {
  readonly schema: z.ZodType;
  readonly run: (request: never) => Promise<unknown>;
}

/** A state's request schema and the call into core that takes the parsed request. */
export function handle<S extends z.ZodType, R>(schema: S, run: (request: z.infer<S>) => Promise<R>): StepSpec {
  return { schema, run: run as (request: never) => Promise<unknown> };
}

/**
 * The logger, the metrics and `handlers`, which wraps each spec, by state name, in the
 * middleware. `ids` picks what identifies the work in the "done" log line (the backup, restore
 * or drill id).
 */
export function stepFactory(t: StepTelemetry, ids: (request: unknown) => Record<string, unknown>) {
  const logger = t.logger ?? new Logger({ serviceName: t.serviceName, ...(t.logLevel ? { logLevel: t.logLevel as never } : {}) });
  const metrics = t.metrics ?? new Metrics({ namespace: t.metricsNamespace, serviceName: t.serviceName });
  const step = (state: string, spec: StepSpec): StepHandler =>
    middy(async (event: unknown) => {
      const request = parseContract(spec.schema, event, `the ${state} request`);
      const result = await spec.run(request as never);
      logger.info(`${state} done`, ids(request));
      return result;
    })
      .use(injectLambdaContext(logger))
      .use(logMetrics(metrics));
  const handlers = <K extends string>(specs: Readonly<Record<K, StepSpec>>): Record<K, StepHandler> =>
    Object.fromEntries(Object.entries<StepSpec>(specs).map(([state, spec]) => [state, step(state, spec)])) as Record<K, StepHandler>;
  return { logger, metrics, handlers };
}

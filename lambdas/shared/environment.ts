/**
 * Lambda environment variables. Each function declares one zod schema for its environment
 * (extending `PowertoolsEnvironment`); the CDK construct types its `environment` prop with the
 * schema's input type and checks the values at synth, and the function parses the real
 * environment with the same schema at cold start. This module is the one place in the Lambda
 * code that reads `process.env`.
 */
import { z } from 'zod';

/** Settings every function passes to Powertools (service name, metrics namespace, log level). */
export const PowertoolsEnvironment = z.object({
  POWERTOOLS_SERVICE_NAME: z.string().min(1),
  POWERTOOLS_METRICS_NAMESPACE: z.string().min(1),
  POWERTOOLS_LOG_LEVEL: z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL', 'SILENT']).default('INFO'),
});

/** The keys the function construct fills in itself from its props. */
export type PowertoolsKey = keyof z.infer<typeof PowertoolsEnvironment>;

/** A function's environment does not match its schema: a deployment mistake, not a user's. */
export class EnvironmentError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(`the function's environment is not valid (redeploy with cdk deploy):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'EnvironmentError';
    this.problems = problems;
  }
}

/** Lists `env`'s problems against `schema` as `NAME: message`, or returns the parsed values. */
export function checkEnvironment<S extends z.ZodType>(schema: S, env: Readonly<Record<string, string | undefined>>): { ok: true; value: z.infer<S> } | { ok: false; problems: string[] } {
  const result = schema.safeParse(env);
  if (result.success) return { ok: true, value: result.data };
  return { ok: false, problems: result.error.issues.map((issue) => `${issue.path.join('.') || '(environment)'}: ${issue.message}`) };
}

/**
 * Parses the process environment with a function's schema, at cold start. Throws
 * `EnvironmentError` naming every missing or malformed variable.
 */
export function readEnvironment<S extends z.ZodType>(schema: S, env: Readonly<Record<string, string | undefined>> = process.env): z.infer<S> {
  const checked = checkEnvironment(schema, env);
  if (!checked.ok) throw new EnvironmentError(checked.problems);
  return checked.value;
}

/** The variable that tells a bundle's function which state it serves: `CheckFlush`. */
export const STEP_VARIABLE = 'MILVUS_GUARD_STEP';

/** The environment entry selecting one of `states` (core/workflow/steps.ts), for a bundle's schema. */
export const stepVariable = <const K extends readonly [string, ...string[]]>(states: K) => ({
  [STEP_VARIABLE]: z.enum(states, { error: `must name the state this function serves: ${states.join(', ')}` }),
});

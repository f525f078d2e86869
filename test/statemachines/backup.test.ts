import { beforeAll, describe, expect, it } from '@jest/globals';
import { ExecutionError, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import type { Context } from 'aws-lambda';
import { loadConfigFile } from '../../core/config/load.js';
import type { Config } from '../../core/config/schema.js';
import { fillPlaceholders, loadDefinition } from '../../core/workflow/asl.js';
import type { PreparedBackup } from '../../core/workflow/contracts.js';
import { defaultBackupName } from '../../core/workflow/prepare.js';
import { makeHandler } from '../../lambdas/prepare/handler.js';
import { RecordingMetrics } from '../lambdas/recording-metrics.js';

// The real statemachines/backup.asl.json, run by aws-local-stepfunctions, with the Prepare task
// calling the real prepare handler in-process against the example config.

const EXECUTION_ID = 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-backup:test-1';
const PREPARE_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:milvus-guard-prepare';

const lambdaContext = {
  functionName: 'milvus-guard-prepare',
  functionVersion: '$LATEST',
  invokedFunctionArn: PREPARE_ARN,
  memoryLimitInMB: '512',
  awsRequestId: 'test-request',
  logGroupName: '/aws/lambda/milvus-guard-prepare',
  logStreamName: 'test',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context;

let config: Config;
let definition: StateMachineDefinition;

beforeAll(async () => {
  config = await loadConfigFile('examples/production.yaml');
  definition = JSON.parse(fillPlaceholders(loadDefinition('backup'), { PrepareFunctionArn: PREPARE_ARN })) as StateMachineDefinition;
});

/** Runs the backup workflow; records what the Prepare Lambda received. */
async function runBackup(input: unknown) {
  const handler = makeHandler({
    config,
    metrics: new RecordingMetrics(),
    environment: { POWERTOOLS_SERVICE_NAME: 'milvus-guard', POWERTOOLS_METRICS_NAMESPACE: 'MilvusGuard', POWERTOOLS_LOG_LEVEL: 'SILENT', VAULT_NAME: 'primary', VAULT_BUCKET: 'milvus-guard-primary-123456789012-us-east-1' },
  });
  const received: unknown[] = [];
  const execution = new StateMachine(definition).run(input as never, {
    context: { Execution: { Id: EXECUTION_ID, Name: 'test-1' } },
    overrides: {
      taskResourceLocalHandlers: {
        Prepare: async (event) => {
          received.push(event);
          return (await handler(event, lambdaContext)) as never;
        },
      },
    },
  });
  return { result: execution.result, received, states: statesEntered(execution.eventLogs) };
}

/** The names of the states the execution entered, in order (read once the execution ended). */
async function statesEntered(events: AsyncGenerator<{ type: string; state?: { name: string } }>): Promise<string[]> {
  const names: string[] = [];
  for await (const event of events) if (event.type === 'StateEntered' && event.state) names.push(event.state.name);
  return names;
}

/** The error a failed execution ended with (aws-local-stepfunctions wraps it in ExecutionError). */
async function failure(result: Promise<unknown>): Promise<{ name: string; message: string }> {
  const err = await result.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ExecutionError)) throw new Error(`expected the execution to fail, got ${String(err)}`);
  return err.cause as { name: string; message: string };
}

describe('backup workflow', () => {
  it('succeeds with the prepared backup for a plan in the config', async () => {
    const { result, received } = await runBackup({ plan: 'milvus-production-backup' });

    const output = (await result) as PreparedBackup;

    const startTime = (received[0] as { execution: { startTime: string } }).execution.startTime;
    expect(output).toEqual({
      plan: 'milvus-production-backup',
      backupName: defaultBackupName('milvus-production-backup', startTime),
      namespace: 'vector-db',
      cluster: { name: 'prod', eksClusterName: 'prod-eks', region: 'us-east-1' },
      vault: { name: 'primary', bucket: 'milvus-guard-primary-123456789012-us-east-1', region: 'us-east-1' },
      executionId: EXECUTION_ID,
    });
  });

  it('passes the execution input, id and start time to Prepare', async () => {
    const { result, received } = await runBackup({ plan: 'milvus-production-backup', backupName: 'before-upgrade' });

    await result;

    expect(received).toEqual([{ input: { plan: 'milvus-production-backup', backupName: 'before-upgrade' }, execution: { id: EXECUTION_ID, startTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/) } }]);
  });

  it('fails with InvalidInput naming the plans that exist when the plan is unknown', async () => {
    const { result, states } = await runBackup({ plan: 'no-such-plan' });

    const error = await failure(result);

    expect(error.name).toBe('InvalidInput');
    expect(error.message).toMatch(/plan "no-such-plan" is not defined in the config; defined: milvus-production-backup/);
    expect(await states).toEqual(['Prepare', 'InvalidInput']);
  });

  it('fails with InvalidInput when the input has an unknown key', async () => {
    const { result } = await runBackup({ plan: 'milvus-production-backup', retention: 'forever' });

    const error = await failure(result);

    expect(error.name).toBe('InvalidInput');
    expect(error.message).toMatch(/retention/);
  });

  it('does not retry an InvalidInput failure', async () => {
    let calls = 0;
    const execution = new StateMachine(definition).run({ plan: 'x' }, {
      context: { Execution: { Id: EXECUTION_ID } },
      overrides: {
        taskResourceLocalHandlers: {
          Prepare: () => {
            calls += 1;
            throw Object.assign(new Error('bad input'), { name: 'InvalidInput' });
          },
        },
      },
    });

    await execution.result.catch(() => undefined);

    expect(calls).toBe(1);
  });

  it('retries a Lambda service exception and then succeeds', async () => {
    let calls = 0;
    const execution = new StateMachine(definition).run({ plan: 'x' }, {
      context: { Execution: { Id: EXECUTION_ID } },
      overrides: {
        retryIntervalOverrides: { Prepare: 0 },
        taskResourceLocalHandlers: {
          Prepare: () => {
            calls += 1;
            if (calls === 1) throw Object.assign(new Error('Service unavailable'), { name: 'Lambda.ServiceException' });
            return { prepared: true };
          },
        },
      },
    });

    await expect(execution.result).resolves.toEqual({ prepared: true });
    expect(calls).toBe(2);
  });
});

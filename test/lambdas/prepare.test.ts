import { loadDefinition } from '../../core/workflow/asl.js';
import { beforeAll, describe, expect, it } from '@jest/globals';
import type { Context } from 'aws-lambda';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { Config } from '../../core/config/schema.js';
import { InvalidInputError } from '../../core/errors.js';
import type { ExecutionStatus } from '../../core/workflow/executions.js';
import { defaultBackupName } from '../../core/workflow/prepare.js';
import { PrepareEnvironment } from '../../lambdas/prepare/environment.js';
import { makeHandler } from '../../lambdas/prepare/handler.js';
import { EnvironmentError, readEnvironment } from '../../lambdas/shared/environment.js';
import { LocalMetrics } from '../../local/workflows/metrics.js';

const START = '2026-11-23T02:00:00.123Z';
const NOW = '2026-11-23T02:00:01.000Z';
const EXECUTION_ID = 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-backup:nightly';
const ENVIRONMENT = readEnvironment(PrepareEnvironment, {
  POWERTOOLS_SERVICE_NAME: 'milvus-guard',
  POWERTOOLS_METRICS_NAMESPACE: 'MilvusGuard',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  VAULT_NAME: 'primary',
  VAULT_BUCKET: 'milvus-guard-primary-123456789012-us-east-1',
  CATALOG_TABLE: 'milvus-guard-catalog',
});
const context = { functionName: 'prepare', awsRequestId: 'r-1', invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:prepare', getRemainingTimeInMillis: () => 30_000 } as unknown as Context;

/** Every execution a lock names still runs. */
const RUNNING: ExecutionStatus = { state: async () => 'RUNNING' };

let config: Config;

beforeAll(async () => {
  config = await loadConfigFile('examples/production.yaml');
});

function request(input: unknown) {
  return { input, execution: { id: EXECUTION_ID, startTime: START } };
}

async function rejection(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err as Error,
  );
}

describe('prepare handler', () => {
  it('returns the prepared backup, named after the plan and the UTC start time', async () => {
    const handler = makeHandler({ config, environment: ENVIRONMENT, executions: RUNNING, metrics: new LocalMetrics(), catalog: new InMemoryCatalog(), now: () => new Date(NOW) });

    const result = await handler(request({ plan: 'milvus-production-backup' }), context);

    expect(result).toEqual({
      plan: 'milvus-production-backup',
      backupName: 'milvus-production-backup-20261123020000',
      namespace: 'vector-db',
      cluster: { name: 'prod', eksClusterName: 'prod-eks', region: 'us-east-1' },
      vault: { name: 'primary', bucket: 'milvus-guard-primary-123456789012-us-east-1', region: 'us-east-1' },
      executionId: EXECUTION_ID,
      startedAt: START,
      // Only latest counts at creation (a backup may yet fail; retention promotes the kept ones):
      // the seventh daily run after it is 2026-11-30T02:00, and the vault's 7-day floor from
      // the start is 123 ms later.
      retainUntil: '2026-11-30T02:00:00.123Z',
    });
  });

  it('locks a daily backup among others for latest 7: the seventh scheduled run after it, or the vault floor when later', async () => {
    const catalog = new InMemoryCatalog();
    for (let d = 1; d <= 22; d++) {
      const startedAt = `2026-11-${String(d).padStart(2, '0')}T02:00:00.000Z`;
      await catalog.createBackup({ backupId: `b-${d}`, plan: 'milvus-production-backup', cluster: 'prod', namespace: 'vector-db', vault: 'primary', executionId: `e-${d}`, status: 'Available', startedAt });
    }
    const handler = makeHandler({ config, environment: ENVIRONMENT, executions: RUNNING, metrics: new LocalMetrics(), catalog, now: () => new Date(NOW) });

    const result = await handler(request({ plan: 'milvus-production-backup' }), context);

    // Daily at 02:00 UTC: the seventh run after 2026-11-23T02:00:00.123Z is 2026-11-30T02:00; the
    // vault's floor, 7 days from the start, is 123 ms later and wins.
    expect(result.retainUntil).toBe('2026-11-30T02:00:00.123Z');
    expect(await catalog.getBackup(result.backupName)).toMatchObject({ retainUntil: '2026-11-30T02:00:00.123Z' });
  });

  it('uses the backup name the input gives', async () => {
    const handler = makeHandler({ config, environment: ENVIRONMENT, executions: RUNNING, metrics: new LocalMetrics(), catalog: new InMemoryCatalog(), now: () => new Date(NOW) });

    const result = await handler(request({ plan: 'milvus-production-backup', backupName: 'before-upgrade-2-6' }), context);

    expect(result.backupName).toBe('before-upgrade-2-6');
  });

  it('emits a BackupsPrepared metric with the plan as dimension', async () => {
    const metrics = new LocalMetrics();
    const handler = makeHandler({ config, environment: ENVIRONMENT, executions: RUNNING, metrics, catalog: new InMemoryCatalog(), now: () => new Date(NOW) });

    await handler(request({ plan: 'milvus-production-backup' }), context);

    expect(metrics.published).toHaveLength(1);
    expect(metrics.published[0]).toMatchObject({ plan: 'milvus-production-backup', BackupsPrepared: 1 });
  });

  it('rejects an unknown plan with InvalidInput listing the plans that exist', async () => {
    const handler = makeHandler({ config, environment: ENVIRONMENT, executions: RUNNING, metrics: new LocalMetrics(), catalog: new InMemoryCatalog(), now: () => new Date(NOW) });

    const error = await rejection(handler(request({ plan: 'milvus-staging-backup' }), context));

    expect(error).toBeInstanceOf(InvalidInputError);
    expect(error.name).toBe('InvalidInput');
    expect(error.message).toContain('plan: plan "milvus-staging-backup" is not defined in the config; defined: milvus-production-backup');
  });

  it('rejects input without a plan, saying the plan is required', async () => {
    const handler = makeHandler({ config, environment: ENVIRONMENT, executions: RUNNING, metrics: new LocalMetrics(), catalog: new InMemoryCatalog(), now: () => new Date(NOW) });

    const error = await rejection(handler(request({}), context));

    expect(error.name).toBe('InvalidInput');
    expect(error.message).toMatch(/plan: is required/);
  });

  it('rejects an unknown key in the input instead of ignoring it', async () => {
    const handler = makeHandler({ config, environment: ENVIRONMENT, executions: RUNNING, metrics: new LocalMetrics(), catalog: new InMemoryCatalog(), now: () => new Date(NOW) });

    const error = await rejection(handler(request({ plan: 'milvus-production-backup', Plan: 'x' }), context));

    expect((error as InvalidInputError).problems).toEqual([expect.stringContaining('"Plan"')]);
  });

  it('rejects a backup name that is not a Kubernetes-style name', async () => {
    const handler = makeHandler({ config, environment: ENVIRONMENT, executions: RUNNING, metrics: new LocalMetrics(), catalog: new InMemoryCatalog(), now: () => new Date(NOW) });

    const error = await rejection(handler(request({ plan: 'milvus-production-backup', backupName: 'Nightly Backup' }), context));

    expect(error.message).toMatch(/backupName: must be lowercase letters, digits and "-"/);
  });

  it('rejects a request the state machine did not build (no execution start time)', async () => {
    const handler = makeHandler({ config, environment: ENVIRONMENT, executions: RUNNING, metrics: new LocalMetrics(), catalog: new InMemoryCatalog(), now: () => new Date(NOW) });

    const error = await rejection(handler({ input: { plan: 'milvus-production-backup' }, execution: { id: EXECUTION_ID } }, context));

    expect(error.name).toBe('InvalidInput');
    expect(error.message).toMatch(/execution\.startTime/);
  });

  it('rejects a plan whose vault is in another region, naming that region', async () => {
    const twoRegions = Config.parse({
      ...config,
      clusters: [...config.clusters, { name: 'eu', eksClusterName: 'eu-eks', region: 'eu-west-1' }],
      vaults: [...config.vaults, { name: 'europe', region: 'eu-west-1', objectLock: { mode: 'GOVERNANCE', defaultRetentionDays: 7 } }],
      plans: [...config.plans, { ...config.plans[0]!, name: 'eu-backup', cluster: 'eu', vault: 'europe' }],
    });
    const handler = makeHandler({ config: twoRegions, environment: ENVIRONMENT, executions: RUNNING, metrics: new LocalMetrics(), catalog: new InMemoryCatalog(), now: () => new Date(NOW) });

    const error = await rejection(handler(request({ plan: 'eu-backup' }), context));

    expect(error.message).toMatch(/backs up into vault europe in eu-west-1, but this workflow serves vault primary; start the backup workflow of the eu-west-1 installation/);
  });
});

describe('prepare handler and the catalog', () => {
  it('records the backup InProgress with the execution and start time', async () => {
    const catalog = new InMemoryCatalog();
    const handler = makeHandler({ config, environment: ENVIRONMENT, executions: RUNNING, metrics: new LocalMetrics(), catalog, now: () => new Date(NOW) });

    await handler(request({ plan: 'milvus-production-backup' }), context);

    expect(await catalog.getBackup('milvus-production-backup-20261123020000')).toMatchObject({
      status: 'InProgress',
      plan: 'milvus-production-backup',
      executionId: EXECUTION_ID,
      startedAt: START,
      steps: { Prepare: { outcome: 'Succeeded' } },
    });
  });

  it('takes the plan lock for the execution', async () => {
    const catalog = new InMemoryCatalog();
    const handler = makeHandler({ config, environment: ENVIRONMENT, executions: RUNNING, metrics: new LocalMetrics(), catalog, now: () => new Date(NOW) });

    await handler(request({ plan: 'milvus-production-backup' }), context);

    expect(await catalog.lockHolder('milvus-production-backup', new Date(NOW))).toEqual({ backupId: 'milvus-production-backup-20261123020000', executionId: EXECUTION_ID });
  });

  it('rejects a second backup of the plan with BackupInProgress while the first holds the lock', async () => {
    const catalog = new InMemoryCatalog();
    const handler = makeHandler({ config, environment: ENVIRONMENT, executions: RUNNING, metrics: new LocalMetrics(), catalog, now: () => new Date(NOW) });
    await handler(request({ plan: 'milvus-production-backup' }), context);

    const second = { input: { plan: 'milvus-production-backup', backupName: 'second' }, execution: { id: `${EXECUTION_ID}-2`, startTime: START } };
    const err = await rejection(handler(second, context));

    expect(err.name).toBe('BackupInProgress');
    expect(err.message).toContain(EXECUTION_ID);
  });

  it('names a lock holder whose execution has ended (LockHolderEnded), so the workflow recovers after it', async () => {
    const catalog = new InMemoryCatalog();
    await makeHandler({ config, environment: ENVIRONMENT, executions: RUNNING, metrics: new LocalMetrics(), catalog, now: () => new Date(NOW) })(request({ plan: 'milvus-production-backup' }), context);
    const stopped: ExecutionStatus = { state: async (arn) => (arn === EXECUTION_ID ? 'ABORTED' : 'RUNNING') };
    const handler = makeHandler({ config, environment: ENVIRONMENT, executions: stopped, metrics: new LocalMetrics(), catalog, now: () => new Date(NOW) });

    const second = { input: { plan: 'milvus-production-backup', backupName: 'second' }, execution: { id: `${EXECUTION_ID}-2`, startTime: START } };
    const err = await rejection(handler(second, context));

    expect(err).toMatchObject({ name: 'LockHolderEnded', backupId: 'milvus-production-backup-20261123020000', executionId: EXECUTION_ID, state: 'ABORTED' });
    expect(await catalog.lockHolder('milvus-production-backup', new Date(NOW))).toMatchObject({ executionId: EXECUTION_ID });
  });

  it('names a running retention run that holds the lock (RetentionRunning), which the workflow waits out, and creates nothing', async () => {
    const catalog = new InMemoryCatalog();
    const run = 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-retention:daily';
    await catalog.acquireLock('milvus-production-backup', { backupId: 'retention-20261123t015900z', executionId: run, purpose: 'retention' }, new Date(NOW), new Date(Date.parse(NOW) + 3_600_000));
    const handler = makeHandler({ config, environment: ENVIRONMENT, executions: RUNNING, metrics: new LocalMetrics(), catalog, now: () => new Date(NOW) });

    const err = await rejection(handler(request({ plan: 'milvus-production-backup' }), context));

    expect(err).toMatchObject({ name: 'RetentionRunning', plan: 'milvus-production-backup', holder: { executionId: run, purpose: 'retention' } });
    expect(await catalog.listBackups()).toEqual([]);
    const policy = expandedPrepareRetry();
    expect(policy).toContainEqual(expect.objectContaining({ ErrorEquals: ['RetentionRunning'], MaxAttempts: 24 }));
  });

  it('succeeds again when Step Functions retries the same execution', async () => {
    const catalog = new InMemoryCatalog();
    const handler = makeHandler({ config, environment: ENVIRONMENT, executions: RUNNING, metrics: new LocalMetrics(), catalog, now: () => new Date(NOW) });
    await handler(request({ plan: 'milvus-production-backup' }), context);

    await expect(handler(request({ plan: 'milvus-production-backup' }), context)).resolves.toMatchObject({ backupName: 'milvus-production-backup-20261123020000' });
  });
});

describe('defaultBackupName', () => {
  it('formats the start time in UTC as yyyymmddhhmmss', () => {
    expect(defaultBackupName('p', '2026-01-05T23:30:09+02:00')).toBe('p-20260105213009');
  });

  it('refuses a start time that is not a timestamp', () => {
    expect(() => defaultBackupName('p', 'yesterday')).toThrow(RangeError);
  });
});

describe('prepare environment', () => {
  it('names every missing variable', () => {
    const read = () => readEnvironment(PrepareEnvironment, { POWERTOOLS_SERVICE_NAME: 'milvus-guard', POWERTOOLS_METRICS_NAMESPACE: 'MilvusGuard' });

    expect(read).toThrow(EnvironmentError);
    expect(read).toThrow(/VAULT_NAME: [\s\S]*VAULT_BUCKET: [\s\S]*CATALOG_TABLE: /);
  });

  it('defaults the log level to INFO', () => {
    const env = readEnvironment(PrepareEnvironment, { POWERTOOLS_SERVICE_NAME: 's', POWERTOOLS_METRICS_NAMESPACE: 'n', VAULT_NAME: 'primary', VAULT_BUCKET: 'bucket', CATALOG_TABLE: 'catalog' });

    expect(env.POWERTOOLS_LOG_LEVEL).toBe('INFO');
  });
});

/** The Retry of the backup's Prepare state as deployed (the named policy expanded). */
function expandedPrepareRetry(): { ErrorEquals: string[]; MaxAttempts: number }[] {
  const definition = JSON.parse(loadDefinition('backup')) as { States: { Prepare: { Retry: { ErrorEquals: string[]; MaxAttempts: number }[] } } };
  return definition.States.Prepare.Retry;
}

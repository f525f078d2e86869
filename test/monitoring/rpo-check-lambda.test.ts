import { describe, expect, it } from '@jest/globals';
import type { Context } from 'aws-lambda';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoCatalog } from '../../core/catalog/dynamo.js';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { METRICS, METRICS_NAMESPACE } from '../../core/monitoring/metrics.js';
import { RpoCheckEnvironment } from '../../lambdas/monitoring/environment.js';
import { makeRpoCheckHandler } from '../../lambdas/monitoring/handler.js';
import { EnvironmentError, readEnvironment } from '../../lambdas/shared/environment.js';
import { LocalMetrics } from '../../local/workflows/metrics.js';
import { backup, configWith, PLAN } from './helpers.js';

const NOW = new Date('2026-11-23T12:00:00.000Z');
const HOUR = 3600;
const context = { functionName: 'rpo-check', awsRequestId: 'r-1', invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:rpo-check', getRemainingTimeInMillis: () => 60_000 } as unknown as Context;
/** What EventBridge sends on schedule; the check reads nothing of it. */
const SCHEDULED_EVENT = { 'detail-type': 'Scheduled Event', source: 'aws.events', time: NOW.toISOString(), detail: {} };

type Emf = { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] }; [key: string]: unknown };

async function run(catalog: InMemoryCatalog | DynamoCatalog, config: Awaited<ReturnType<typeof configWith>>) {
  const metrics = new LocalMetrics();
  const handler = makeRpoCheckHandler({ config, catalog, serviceName: 'milvus-guard', metricsNamespace: METRICS_NAMESPACE, metrics, now: () => NOW });
  const checks = await handler(SCHEDULED_EVENT, context);
  return { checks, published: metrics.published as unknown as Emf[] };
}

describe('the RPO check Lambda', () => {
  it("publishes each plan's age and RPO with the plan as dimension, then one RpoChecked", async () => {
    const catalog = new InMemoryCatalog();
    await catalog.createBackup(backup('b-1', { completedAt: '2026-11-23T02:20:00.000Z' }));

    const { checks, published } = await run(catalog, await configWith({ rpo: '26h' }));

    expect(checks).toEqual([expect.objectContaining({ plan: PLAN, state: 'met' })]);
    expect(published).toHaveLength(2);
    const [plan, heartbeat] = published;
    expect(plan).toMatchObject({ plan: PLAN, service: 'milvus-guard', [METRICS.rpoSeconds.name]: 26 * HOUR, [METRICS.secondsSinceLastAvailableBackup.name]: 9 * HOUR + 40 * 60 });
    expect(plan!._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: METRICS_NAMESPACE, Dimensions: [['service', 'plan']] });
    expect(heartbeat).toMatchObject({ service: 'milvus-guard', [METRICS.rpoChecked.name]: 1 });
    expect(heartbeat).not.toHaveProperty('plan');
    expect(heartbeat!._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([['service']]);
  });

  it('publishes an age over the RPO when the newest Available backup is too old', async () => {
    const catalog = new InMemoryCatalog();
    await catalog.createBackup(backup('b-1', { startedAt: '2026-11-21T02:00:00.000Z', completedAt: '2026-11-21T02:20:00.000Z' }));
    await catalog.createBackup(backup('f-1', { status: 'Failed', startedAt: '2026-11-23T02:00:00.000Z', completedAt: undefined }));

    const { checks, published } = await run(catalog, await configWith({ rpo: '26h' }));

    expect(checks[0]).toMatchObject({ state: 'violated' });
    expect(published[0]![METRICS.secondsSinceLastAvailableBackup.name]).toBeGreaterThan(published[0]![METRICS.rpoSeconds.name] as number);
  });

  it('publishes only the heartbeat for a plan without an RPO', async () => {
    const { published } = await run(new InMemoryCatalog(), await configWith({ rpo: undefined, schedule: undefined }));

    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({ [METRICS.rpoChecked.name]: 1 });
  });

  it('publishes the RPO but no age for a plan never backed up nor attempted', async () => {
    const { published } = await run(new InMemoryCatalog(), await configWith({ rpo: '26h' }));

    expect(published[0]).toMatchObject({ plan: PLAN, [METRICS.rpoSeconds.name]: 26 * HOUR });
    expect(published[0]).not.toHaveProperty(METRICS.secondsSinceLastAvailableBackup.name);
  });

  it('reads the DynamoDB catalog with one query of its index, and nothing else', async () => {
    const ddb = mockClient(DynamoDBDocumentClient);
    ddb.on(QueryCommand).resolves({ Items: [{ pk: 'BACKUP#b-1', sk: 'BACKUP', ...backup('b-1', { completedAt: '2026-11-23T02:20:00.000Z' }) }] });
    const catalog = new DynamoCatalog({ tableName: 'milvus-guard-catalog', client: DynamoDBDocumentClient.from(new DynamoDBClient({})) });

    const { checks } = await run(catalog, await configWith({ rpo: '26h' }));

    expect(checks[0]).toMatchObject({ state: 'met', lastAvailable: { backupId: 'b-1' } });
    expect(ddb.calls()).toHaveLength(1);
    expect(ddb.commandCalls(QueryCommand)[0]!.args[0].input).toMatchObject({ TableName: 'milvus-guard-catalog', IndexName: 'byTime' });
    ddb.restore();
  });

  it('refuses an environment without the catalog table, naming it', () => {
    expect(() => readEnvironment(RpoCheckEnvironment, { POWERTOOLS_SERVICE_NAME: 'milvus-guard', POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE })).toThrow(EnvironmentError);
    expect(() => readEnvironment(RpoCheckEnvironment, { POWERTOOLS_SERVICE_NAME: 'milvus-guard', POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE })).toThrow(/CATALOG_TABLE/);
  });
});

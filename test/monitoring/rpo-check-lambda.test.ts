import { describe, expect, it } from '@jest/globals';
import type { Context } from 'aws-lambda';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { DynamoCatalog } from '../../core/catalog/dynamo.js';
import { DRILL_FIRST_SEEN_KEYS, DynamoFirstSeen, FIRST_SEEN_KEYS, InMemoryFirstSeen, type FirstSeenMarkers } from '../../core/catalog/first-seen.js';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { METRICS, METRICS_NAMESPACE } from '../../core/monitoring/metrics.js';
import { RpoCheckEnvironment } from '../../lambdas/monitoring/environment.js';
import { makeRpoCheckHandler } from '../../lambdas/monitoring/handler.js';
import { EnvironmentError, readEnvironment } from '../../lambdas/shared/environment.js';
import { LocalMetrics } from '../../local/workflows/metrics.js';
import { BACKUP_KEYS, RESTORE_KEYS } from '../../core/catalog/keys.js';
import type { Config } from '../../core/config/schema.js';
import { backup, configWith, drillRestore, PLAN } from './helpers.js';

const NOW = new Date('2026-11-23T12:00:00.000Z');
const HOUR = 3600;
const DAY = 86_400;
const DRILL = 'production-weekly-drill';

/** The config without its drills, where a test is about plans only. */
const withoutDrills = (config: Config): Config => ({ ...config, drills: [] });
const context = { functionName: 'rpo-check', awsRequestId: 'r-1', invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:rpo-check', getRemainingTimeInMillis: () => 60_000 } as unknown as Context;
/** What EventBridge sends on schedule; the check reads nothing of it. */
const SCHEDULED_EVENT = { 'detail-type': 'Scheduled Event', source: 'aws.events', time: NOW.toISOString(), detail: {} };

type Emf = { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] }; [key: string]: unknown };

async function run(
  catalog: InMemoryCatalog | DynamoCatalog,
  config: Awaited<ReturnType<typeof configWith>>,
  firstSeen: FirstSeenMarkers = new InMemoryFirstSeen(),
  now: Date = NOW,
  drillFirstSeen: FirstSeenMarkers = new InMemoryFirstSeen(),
) {
  const metrics = new LocalMetrics();
  const handler = makeRpoCheckHandler({ config, catalog, firstSeen, drillFirstSeen, serviceName: 'milvus-guard', metricsNamespace: METRICS_NAMESPACE, metrics, now: () => now });
  const checks = await handler(SCHEDULED_EVENT, context);
  return { checks, published: metrics.published as unknown as Emf[] };
}

describe('the RPO check Lambda', () => {
  it("publishes each plan's age and RPO with the plan as dimension, then one RpoChecked", async () => {
    const catalog = new InMemoryCatalog();
    await catalog.createBackup(backup('b-1', { completedAt: '2026-11-23T02:20:00.000Z' }));

    const { checks, published } = await run(catalog, withoutDrills(await configWith({ rpo: '26h' })));

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
    const { published } = await run(new InMemoryCatalog(), withoutDrills(await configWith({ rpo: undefined, schedule: undefined })));

    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({ [METRICS.rpoChecked.name]: 1 });
  });

  it('records when it first saw a plan never backed up nor attempted, and publishes its age from then', async () => {
    const firstSeen = new InMemoryFirstSeen();

    const { checks, published } = await run(new InMemoryCatalog(), withoutDrills(await configWith({ rpo: '26h' })), firstSeen);

    expect(await firstSeen.list()).toEqual(new Map([[PLAN, NOW.toISOString()]]));
    expect(checks[0]).toMatchObject({ state: 'no-backup', ageFrom: 'first-seen', ageSeconds: 0 });
    expect(published[0]).toMatchObject({ plan: PLAN, [METRICS.rpoSeconds.name]: 26 * HOUR, [METRICS.secondsSinceLastAvailableBackup.name]: 0 });
  });

  it('publishes an age over the RPO for a plan that has had no backup since it was first seen longer ago than its RPO', async () => {
    const firstSeen = new InMemoryFirstSeen();
    const config = withoutDrills(await configWith({ rpo: '26h' }));
    await run(new InMemoryCatalog(), config, firstSeen, new Date(NOW.getTime() - 27 * HOUR * 1000));

    const { checks, published } = await run(new InMemoryCatalog(), config, firstSeen);

    // The first run's marker stays: it is never moved to a later run.
    expect(await firstSeen.list()).toEqual(new Map([[PLAN, '2026-11-22T09:00:00.000Z']]));
    expect(checks[0]).toMatchObject({ state: 'violated', lastAvailable: null, ageFrom: 'first-seen' });
    expect(published[0]![METRICS.secondsSinceLastAvailableBackup.name]).toBe(27 * HOUR);
    expect(published[0]![METRICS.secondsSinceLastAvailableBackup.name]).toBeGreaterThan(published[0]![METRICS.rpoSeconds.name] as number);
  });

  it("reads the DynamoDB catalog with one query of its index for backups, restores, plans' and drills' first-seen markers, and puts only missing markers", async () => {
    const ddb = mockClient(DynamoDBDocumentClient);
    const other = 'milvus-staging-backup';
    ddb.on(QueryCommand, { ExpressionAttributeValues: { ':all': BACKUP_KEYS.gsiPk } }).resolves({ Items: [{ pk: 'BACKUP#b-1', sk: 'BACKUP', ...backup('b-1', { completedAt: '2026-11-23T02:20:00.000Z' }) }] });
    ddb.on(QueryCommand, { ExpressionAttributeValues: { ':all': RESTORE_KEYS.gsiPk } }).resolves({ Items: [] });
    ddb.on(QueryCommand, { ExpressionAttributeValues: { ':all': FIRST_SEEN_KEYS.gsiPk } }).resolves({ Items: [{ pk: `FIRSTSEEN#${PLAN}`, sk: 'FIRSTSEEN', plan: PLAN, firstSeenAt: '2026-11-01T00:00:00.000Z' }] });
    ddb.on(QueryCommand, { ExpressionAttributeValues: { ':all': DRILL_FIRST_SEEN_KEYS.gsiPk } }).resolves({ Items: [] });
    ddb.on(PutCommand).resolves({});
    const client = DynamoDBDocumentClient.from(new DynamoDBClient({}));
    const config = await configWith({ rpo: '26h' });
    const twoPlans = { ...config, plans: [...config.plans, { ...config.plans[0]!, name: other }] };

    try {
      const { checks } = await run(
        new DynamoCatalog({ tableName: 'milvus-guard-catalog', client }),
        twoPlans,
        new DynamoFirstSeen({ tableName: 'milvus-guard-catalog', client }),
        NOW,
        new DynamoFirstSeen({ tableName: 'milvus-guard-catalog', client, subject: 'drill' }),
      );

      expect(checks[0]).toMatchObject({ state: 'met', lastAvailable: { backupId: 'b-1' } });
      expect(checks[1]).toMatchObject({ plan: other, state: 'no-backup', ageFrom: 'first-seen', ageSeconds: 0 });
      const queries = ddb.commandCalls(QueryCommand).map((call) => call.args[0].input);
      expect(queries).toHaveLength(4);
      for (const query of queries) expect(query).toMatchObject({ TableName: 'milvus-guard-catalog', IndexName: 'byTime' });
      const puts = ddb.commandCalls(PutCommand).map((call) => call.args[0].input);
      expect(puts).toEqual([
        {
          TableName: 'milvus-guard-catalog',
          Item: { pk: `FIRSTSEEN#${other}`, sk: 'FIRSTSEEN', gsi1pk: 'FIRSTSEEN', gsi1sk: `${NOW.toISOString()}#${other}`, plan: other, firstSeenAt: NOW.toISOString() },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': 'pk' },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
        {
          TableName: 'milvus-guard-catalog',
          Item: { pk: `FIRSTSEEN#drill#${DRILL}`, sk: 'FIRSTSEEN', gsi1pk: 'FIRSTSEEN#drill', gsi1sk: `${NOW.toISOString()}#${DRILL}`, drill: DRILL, firstSeenAt: NOW.toISOString() },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': 'pk' },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        },
      ]);
      expect(ddb.calls()).toHaveLength(6);
    } finally {
      ddb.restore();
    }
  });

  it("keeps a marker another run wrote first, as DynamoDB's refused put returns it", async () => {
    const ddb = mockClient(DynamoDBDocumentClient);
    ddb.on(QueryCommand).resolves({ Items: [] });
    ddb.on(PutCommand).rejects(new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {}, Item: { firstSeenAt: { S: '2026-11-21T00:00:00.000Z' } } }));
    const client = DynamoDBDocumentClient.from(new DynamoDBClient({}));

    try {
      const { checks, published } = await run(new DynamoCatalog({ tableName: 'milvus-guard-catalog', client }), withoutDrills(await configWith({ rpo: '26h' })), new DynamoFirstSeen({ tableName: 'milvus-guard-catalog', client }));

      expect(checks[0]).toMatchObject({ state: 'violated', ageFrom: 'first-seen', ageSince: '2026-11-21T00:00:00.000Z' });
      expect(published[0]![METRICS.secondsSinceLastAvailableBackup.name]).toBe(2 * DAY + 12 * HOUR);
    } finally {
      ddb.restore();
    }
  });

  it('refuses an environment without the catalog table, naming it', () => {
    expect(() => readEnvironment(RpoCheckEnvironment, { POWERTOOLS_SERVICE_NAME: 'milvus-guard', POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE })).toThrow(EnvironmentError);
    expect(() => readEnvironment(RpoCheckEnvironment, { POWERTOOLS_SERVICE_NAME: 'milvus-guard', POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE })).toThrow(/CATALOG_TABLE/);
  });
});

describe("the RPO check Lambda's drills", () => {
  // The example's drill runs Sundays at 06:00 UTC: its period is a week plus a day to run.
  const PERIOD = 7 * DAY + DAY;
  const drillOf = (published: Emf[]) => published.find((doc) => doc.drill === DRILL);

  it("publishes the age of a weekly drill's newest pass, 3 days ago, and its period, with the drill as dimension", async () => {
    const catalog = new InMemoryCatalog();
    await catalog.createRestore(drillRestore(`${DRILL}-drill-20261120060000`, { requestedAt: '2026-11-20T06:00:00.000Z', completedAt: '2026-11-20T12:00:00.000Z' }));

    const { published } = await run(catalog, await configWith({ rpo: '26h' }));

    const doc = drillOf(published);
    expect(doc).toMatchObject({ service: 'milvus-guard', [METRICS.secondsSinceLastPassedDrill.name]: 3 * DAY, [METRICS.drillPeriodSeconds.name]: PERIOD });
    expect(doc!._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: METRICS_NAMESPACE, Dimensions: [['service', 'drill']] });
    expect(doc).not.toHaveProperty('plan');
  });

  it("counts from the newest pass, not a later failed run's", async () => {
    const catalog = new InMemoryCatalog();
    await catalog.createRestore(drillRestore(`${DRILL}-drill-20261108060000`, { requestedAt: '2026-11-08T06:00:00.000Z', completedAt: '2026-11-08T06:04:00.000Z' }));
    await catalog.createRestore(drillRestore(`${DRILL}-drill-20261115060000`, { status: 'Failed', requestedAt: '2026-11-15T06:00:00.000Z', completedAt: '2026-11-15T06:04:00.000Z' }));

    const { published } = await run(catalog, await configWith({ rpo: '26h' }));

    expect(drillOf(published)![METRICS.secondsSinceLastPassedDrill.name]).toBe(15 * DAY + 6 * HOUR - 4 * 60);
    expect(drillOf(published)![METRICS.secondsSinceLastPassedDrill.name]).toBeGreaterThan(PERIOD);
  });

  it('ignores the runs of another drill and restores that are no drill', async () => {
    const catalog = new InMemoryCatalog();
    await catalog.createRestore(drillRestore(`${PLAN}-drill-20261122060000`, { requestedAt: '2026-11-22T06:00:00.000Z' }));
    await catalog.createRestore(drillRestore('r-1', { drillId: undefined, requestedAt: '2026-11-22T06:00:00.000Z' }));
    await catalog.createRestore(drillRestore(`${DRILL}-drill-20261101060000`, { requestedAt: '2026-11-01T06:00:00.000Z', completedAt: '2026-11-01T06:00:00.000Z' }));

    const { published } = await run(catalog, await configWith({ rpo: '26h' }));

    expect(drillOf(published)![METRICS.secondsSinceLastPassedDrill.name]).toBe(22 * DAY + 6 * HOUR);
  });

  it('counts a drill that never passed from its oldest attempt', async () => {
    const catalog = new InMemoryCatalog();
    await catalog.createRestore(drillRestore(`${DRILL}-drill-20261115060000`, { status: 'Failed', requestedAt: '2026-11-15T06:00:00.000Z' }));
    await catalog.createRestore(drillRestore(`${DRILL}-drill-20261122060000`, { status: 'Failed', requestedAt: '2026-11-22T06:00:00.000Z' }));

    const { published } = await run(catalog, await configWith({ rpo: '26h' }));

    expect(drillOf(published)![METRICS.secondsSinceLastPassedDrill.name]).toBe(8 * DAY + 6 * HOUR);
  });

  it('records when it first saw a drill never attempted, and publishes its age from then with its period', async () => {
    const drillFirstSeen = new InMemoryFirstSeen();

    const { published } = await run(new InMemoryCatalog(), await configWith({ rpo: '26h' }), new InMemoryFirstSeen(), NOW, drillFirstSeen);

    expect(await drillFirstSeen.list()).toEqual(new Map([[DRILL, NOW.toISOString()]]));
    expect(drillOf(published)).toMatchObject({ [METRICS.drillPeriodSeconds.name]: PERIOD, [METRICS.secondsSinceLastPassedDrill.name]: 0 });
  });

  it('publishes an age over the period for a drill never attempted since it was first seen longer ago than its period', async () => {
    const drillFirstSeen = new InMemoryFirstSeen();
    const config = await configWith({ rpo: '26h' });
    await run(new InMemoryCatalog(), config, new InMemoryFirstSeen(), new Date(NOW.getTime() - 9 * DAY * 1000), drillFirstSeen);

    const { published } = await run(new InMemoryCatalog(), config, new InMemoryFirstSeen(), NOW, drillFirstSeen);

    // The first run's marker stays: the second run does not restart the drill's clock.
    expect(await drillFirstSeen.list()).toEqual(new Map([[DRILL, '2026-11-14T12:00:00.000Z']]));
    expect(drillOf(published)![METRICS.secondsSinceLastPassedDrill.name]).toBe(9 * DAY);
    expect(drillOf(published)![METRICS.secondsSinceLastPassedDrill.name]).toBeGreaterThan(PERIOD);
  });

  it("reads a drill's marker from the DynamoDB catalog and publishes its age from it, writing none", async () => {
    const ddb = mockClient(DynamoDBDocumentClient);
    ddb.on(QueryCommand).resolves({ Items: [] });
    ddb.on(QueryCommand, { ExpressionAttributeValues: { ':all': FIRST_SEEN_KEYS.gsiPk } }).resolves({ Items: [{ pk: `FIRSTSEEN#${PLAN}`, sk: 'FIRSTSEEN', plan: PLAN, firstSeenAt: NOW.toISOString() }] });
    ddb.on(QueryCommand, { ExpressionAttributeValues: { ':all': DRILL_FIRST_SEEN_KEYS.gsiPk } }).resolves({
      Items: [{ pk: `FIRSTSEEN#drill#${DRILL}`, sk: 'FIRSTSEEN', gsi1pk: 'FIRSTSEEN#drill', gsi1sk: `2026-11-10T00:00:00.000Z#${DRILL}`, drill: DRILL, firstSeenAt: '2026-11-10T00:00:00.000Z' }],
    });
    const client = DynamoDBDocumentClient.from(new DynamoDBClient({}));

    try {
      const { published } = await run(
        new DynamoCatalog({ tableName: 'milvus-guard-catalog', client }),
        await configWith({ rpo: '26h' }),
        new DynamoFirstSeen({ tableName: 'milvus-guard-catalog', client }),
        NOW,
        new DynamoFirstSeen({ tableName: 'milvus-guard-catalog', client, subject: 'drill' }),
      );

      expect(drillOf(published)![METRICS.secondsSinceLastPassedDrill.name]).toBe(13 * DAY + 12 * HOUR);
      expect(ddb.commandCalls(PutCommand)).toHaveLength(0);
    } finally {
      ddb.restore();
    }
  });
});

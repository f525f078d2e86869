import { beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Context } from 'aws-lambda';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import { METRICS, METRICS_NAMESPACE, type MetricSpec } from '../../core/monitoring/metrics.js';
import type { RestoreServices } from '../../core/restore/context.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { makeRestoreStepHandlers } from '../../lambdas/restore/handlers.js';
import { LocalMetrics } from '../../local/workflows/metrics.js';

// CheckReplication's metrics as its Lambda publishes them (EMF), against the one list of metrics
// (core/monitoring/metrics.ts) the DR stack's alarms and the dashboard are built from: each metric
// with exactly the dimensions the list declares, so an alarm reading it sees data.

type Emf = { _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] }; [key: string]: unknown };

const PLAN = 'milvus-production-backup';
const SECOND = 'second-plan';
const REGION = 'us-west-2';
const NOW = new Date('2026-11-23T12:00:00.000Z');
const context = { functionName: 'check-replication', awsRequestId: 'r-1', invokedFunctionArn: `arn:aws:lambda:${REGION}:123456789012:function:check-replication`, getRemainingTimeInMillis: () => 300_000 } as unknown as Context;

/** The sets of dimensions a metric may be published with, as the list declares them. */
const declared = (spec: MetricSpec): string[][] =>
  ({ none: [['service']], plan: [['service', 'plan']], drill: [['service', 'drill']], 'total-and-plan': [['service'], ['service', 'plan']] })[spec.dimensions];

let config: Config;

beforeAll(async () => {
  const example = await loadConfigFile('examples/production.yaml');
  config = { ...example, plans: [...example.plans, { ...example.plans[0]!, name: SECOND }] };
});

/** Runs CheckReplication once over Available backups (`late` per plan, all hours old) that have nothing in the DR vault yet. */
async function check(late: Record<string, number>): Promise<Emf[]> {
  const catalog = new InMemoryCatalog();
  for (const [plan, count] of Object.entries(late)) {
    for (let i = 0; i < count; i++) {
      await catalog.createBackup({ backupId: `${plan}-${i}`, plan, cluster: 'prod', namespace: 'vector-db', vault: 'primary', executionId: `e-${plan}-${i}`, status: 'Available', startedAt: '2026-11-23T02:00:00.000Z', completedAt: '2026-11-23T02:20:00.000Z' });
    }
  }
  const services = { config, catalog, vault: new InMemoryVaultStore('memory://dr-vault'), now: () => NOW, region: REGION } as unknown as RestoreServices;
  const metrics = new LocalMetrics();
  const handler = makeRestoreStepHandlers({ services, vault: { name: 'primary', bucket: 'unused' }, serviceName: 'milvus-guard', metricsNamespace: METRICS_NAMESPACE, logLevel: 'SILENT', metrics }).CheckReplication;

  // Per-plan counts go out as Powertools single metrics, printed at once to stdout (where Lambda
  // hands EMF to CloudWatch) rather than through the handler's metrics: read both.
  const printed: string[] = [];
  const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown) => {
    printed.push(String(chunk));
    return true;
  });
  try {
    await handler({ 'detail-type': 'Scheduled Event', source: 'aws.events', detail: {} }, context);
  } finally {
    write.mockRestore();
  }

  const emf = printed.flatMap((text) => text.split('\n')).filter((line) => line.includes('"_aws"')).map((line) => JSON.parse(line) as Emf);
  return [...(metrics.published as unknown as Emf[]), ...emf];
}

describe('CheckReplication metrics', () => {
  it('publishes ReplicationLate as the list declares it: the run\'s total without plan (what the DR alarm reads), and each plan\'s count with it', async () => {
    const published = await check({ [PLAN]: 2, [SECOND]: 1 });

    expect(METRICS.replicationLate.dimensions).toBe('total-and-plan');
    const late = published.filter((d) => METRICS.replicationLate.name in d);
    expect(late.map((d) => [d._aws.CloudWatchMetrics[0]!.Dimensions[0], d['plan'], d[METRICS.replicationLate.name]])).toEqual(
      expect.arrayContaining([
        [['service'], undefined, 3],
        [['service', 'plan'], PLAN, 2],
        [['service', 'plan'], SECOND, 1],
      ]),
    );
    expect(late).toHaveLength(3);
  });

  it('publishes every metric of a run with exactly the dimensions the list declares for it, in the namespace the alarms read', async () => {
    const published = await check({ [PLAN]: 1 });
    const specs = new Map(Object.values(METRICS).map((spec) => [spec.name, spec]));
    const seen: string[] = [];

    for (const document of published) {
      for (const directive of document._aws.CloudWatchMetrics) {
        expect(directive.Namespace).toBe(METRICS_NAMESPACE);
        for (const { Name, Unit } of directive.Metrics) {
          const spec = specs.get(Name);
          expect(spec).toBeDefined();
          expect(Unit).toBe(spec!.unit);
          expect(declared(spec!)).toContainEqual(directive.Dimensions[0]);
          seen.push(Name);
        }
      }
    }
    expect(new Set(seen)).toEqual(new Set([METRICS.replicationChecked, METRICS.replicationPending, METRICS.replicationLate, METRICS.replicationCheckErrors].map((s) => s.name)));
  });
});

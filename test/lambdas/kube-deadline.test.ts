/**
 * The Lambdas' Kubernetes request deadline: `KUBE_REQUEST_TIMEOUT_SECONDS` in each step bundle's
 * environment reaches the clients its services build (and the backup's timings), and without it
 * the default of DEFAULT_TIMINGS applies; the retention steps' timings come from theirs the same
 * way. DescribeCluster is mocked; no request is sent.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { mockClient } from 'aws-sdk-client-mock';
import { DEFAULT_TIMINGS } from '../../core/backup/context.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { resolvePlan } from '../../core/config/resolve.js';
import type { Config } from '../../core/config/schema.js';
import { deadlineOf } from '../../core/kube/deadline.js';
import { BackupStepEnvironment } from '../../lambdas/backup/environment.js';
import { awsBackupServices } from '../../lambdas/backup/services.js';
import { RestoreStepEnvironment } from '../../lambdas/restore/environment.js';
import { awsRestoreServices } from '../../lambdas/restore/services.js';
import { RetentionStepEnvironment } from '../../lambdas/retention/environment.js';
import { awsRetentionServices } from '../../lambdas/retention/services.js';
import { readEnvironment } from '../../lambdas/shared/environment.js';

const CLUSTER_CA = Buffer.from(readFileSync(new URL('../eks/fixtures/apiserver-test-only.crt', import.meta.url), 'utf8')).toString('base64');
const eks = mockClient(EKSClient);

const COMMON = {
  POWERTOOLS_SERVICE_NAME: 'milvus-guard',
  POWERTOOLS_METRICS_NAMESPACE: 'MilvusGuard',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  VAULT_NAME: 'primary',
  VAULT_BUCKET: 'milvus-guard-primary-123456789012-us-east-1',
  VAULT_KMS_KEY_ARN: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  VAULT_OBJECT_LOCK_MODE: 'GOVERNANCE',
  CATALOG_TABLE: 'milvus-guard-catalog',
  DATAMOVER_IMAGE: '123456789012.dkr.ecr.us-east-1.amazonaws.com/datamover:1',
  AWS_REGION: 'us-east-1',
};

let config: Config;

beforeAll(async () => {
  config = await loadConfigFile('examples/production.yaml');
  eks.on(DescribeClusterCommand).resolves({ cluster: { name: 'prod-eks', arn: 'arn:aws:eks:us-east-1:123456789012:cluster/prod-eks', status: 'ACTIVE', endpoint: 'https://prod-eks.example.com', certificateAuthority: { data: CLUSTER_CA } } });
});

afterAll(() => eks.restore());

const cluster = () => resolvePlan(config, config.plans[0]!.name).cluster;

const bundles = [
  ['backup', (extra: Record<string, string>) => awsBackupServices(config, readEnvironment(BackupStepEnvironment, { ...COMMON, MILVUS_GUARD_STEP: 'Discover', ...extra })).kube],
  ['restore', (extra: Record<string, string>) => awsRestoreServices(config, readEnvironment(RestoreStepEnvironment, { ...COMMON, MILVUS_GUARD_STEP: 'RestoreVolumes', ...extra })).kube],
  ['retention', (extra: Record<string, string>) => awsRetentionServices(config, readEnvironment(RetentionStepEnvironment, { ...COMMON, MILVUS_GUARD_STEP: 'ApplyPlan', ...extra })).kube],
] as const;

describe('the Kubernetes request deadline of the AWS step functions', () => {
  it.each(bundles)('the %s steps give their clients the deadline KUBE_REQUEST_TIMEOUT_SECONDS sets', async (_bundle, kubeOf) => {
    const kube = kubeOf({ KUBE_REQUEST_TIMEOUT_SECONDS: '7' });

    const clients = await kube(cluster());

    expect(deadlineOf(clients.kc).timeoutMs).toBe(7000);
  });

  it.each(bundles)('the %s steps default to the deadline of DEFAULT_TIMINGS', async (_bundle, kubeOf) => {
    const clients = await kubeOf({})(cluster());

    expect(deadlineOf(clients.kc).timeoutMs).toBe(DEFAULT_TIMINGS.kubeRequestTimeoutSeconds * 1000);
  });

  it("puts the deadline in the backup steps' timings (the Milvus relay's calls use it)", () => {
    const services = awsBackupServices(config, readEnvironment(BackupStepEnvironment, { ...COMMON, MILVUS_GUARD_STEP: 'Discover', KUBE_REQUEST_TIMEOUT_SECONDS: '12' }));

    expect(services.timings.kubeRequestTimeoutSeconds).toBe(12);
  });

  it('refuses a deadline that is not a positive whole number of seconds, naming the variable', () => {
    expect(() => readEnvironment(BackupStepEnvironment, { ...COMMON, MILVUS_GUARD_STEP: 'Discover', KUBE_REQUEST_TIMEOUT_SECONDS: '0' })).toThrow(/KUBE_REQUEST_TIMEOUT_SECONDS: /);
  });
});

describe('the retention timings of the AWS step functions', () => {
  const timingsOf = (extra: Record<string, string>) => awsRetentionServices(config, readEnvironment(RetentionStepEnvironment, { ...COMMON, MILVUS_GUARD_STEP: 'CollectGarbage', ...extra })).retention;

  it("take garbage collection's minimum age from GC_MIN_AGE_SECONDS, 24 hours without it", () => {
    expect(timingsOf({}).gcMinAgeSeconds).toBe(86_400);
    expect(timingsOf({ GC_MIN_AGE_SECONDS: '0' }).gcMinAgeSeconds).toBe(0);
    expect(() => timingsOf({ GC_MIN_AGE_SECONDS: '-5' })).toThrow('GC_MIN_AGE_SECONDS');
  });
});

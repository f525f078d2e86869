/**
 * Helpers for the CLI tests: a root program with one command module registered and its output
 * captured, local state directories that look started (a kubeconfig file) with a file catalog,
 * the AWS clients the start path calls, and record builders.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach } from '@jest/globals';
import { SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { Command } from 'commander';
import { LocalCatalog } from '../../core/catalog/local.js';
import { BackupRecord, RestoreRecord, type BackupRecordInput, type RestoreRecordInput } from '../../core/catalog/record.js';
import type { WorkflowIO } from '../../cli/commands/common.js';
import type { PreparedDrill } from '../../core/workflow/restore-state.js';

export const PLAN = 'milvus-production-backup';
export const CONFIG = 'examples/production.yaml';

/** A program with `register`'s commands; `run` resolves to the exit code, output is captured. */
export function cliWith(register: (program: Command, io: WorkflowIO) => void): { run: (...args: string[]) => Promise<number>; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    run: async (...args) => {
      process.exitCode = undefined;
      const p = new Command('milvus-guard').exitOverride();
      register(p, { out: (t) => out.push(t), err: (t) => err.push(t), sleep: async () => undefined });
      try {
        await p.parseAsync(['node', 'milvus-guard', ...args]);
        return typeof process.exitCode === 'number' ? process.exitCode : 0;
      } finally {
        process.exitCode = undefined;
      }
    },
  };
}

/**
 * Mocks of the clients the CLI calls to start a workflow in AWS, reset before each test of the
 * calling block: STS names account 123456789012, Step Functions starts `execution`, and DynamoDB
 * answers what the test sets. One mock per client class: aws-sdk-client-mock patches the class,
 * so every instance the CLI makes answers from it.
 */
export function mockAwsStart(execution: string) {
  const sts = mockClient(STSClient);
  const sfn = mockClient(SFNClient);
  const ddb = mockClient(DynamoDBDocumentClient);
  beforeEach(() => {
    ddb.reset();
    sfn.reset();
    sts.reset();
    sts.on(GetCallerIdentityCommand).resolves({ Account: '123456789012' });
    sfn.on(StartExecutionCommand).resolves({ executionArn: execution, startDate: new Date() });
  });
  return { sts, sfn, ddb };
}

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** A state directory as `local up` leaves it, as far as the CLI checks (a kubeconfig), and its catalog. */
export async function localState(): Promise<{ dir: string; catalog: LocalCatalog }> {
  const dir = await mkdtemp(join(tmpdir(), 'mg-cli-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'kubeconfig'), '');
  return { dir, catalog: new LocalCatalog(join(dir, 'catalog')) };
}

/** An Available backup of the example plan; `over` changes fields. */
/** The drill the drill workflow's Prepare step hands on, of the example plan; `over` changes fields. */
export function preparedDrill(over: Partial<PreparedDrill> = {}): PreparedDrill {
  return {
    drillId: 'production-weekly-drill-1',
    drill: 'production-weekly-drill',
    plan: 'milvus-production-backup',
    backupId: 'nightly-1',
    backupCompletedAt: '2026-11-23T02:03:00.000Z',
    targetCluster: 'prod',
    targetNamespace: 'vector-db-drill',
    validateRowCounts: true,
    cleanup: true,
    vault: { name: 'primary', bucket: 'milvus-guard-primary-123456789012-us-east-1', region: 'us-east-1' },
    executionId: 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-drill:d1',
    startedAt: '2026-11-23T06:00:00.000Z',
    ...over,
  };
}

export function backupRecord(over: Partial<BackupRecordInput> = {}): BackupRecord {
  return BackupRecord.parse({
    backupId: 'nightly-1',
    plan: PLAN,
    cluster: 'prod',
    namespace: 'vector-db',
    vault: 'primary',
    executionId: 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-backup:nightly-1',
    status: 'Available',
    startedAt: '2026-11-23T02:00:00.000Z',
    completedAt: '2026-11-23T02:03:00.000Z',
    steps: { Snapshot: { startedAt: '2026-11-23T02:01:00.000Z', endedAt: '2026-11-23T02:01:10.000Z', outcome: 'Succeeded' } },
    rowCounts: [
      { database: 'default', collection: 'product_embeddings', rows: 19726, confirmedBy: 'count' },
      { database: 'analytics', collection: 'session_vectors', rows: 24803, confirmedBy: 'count' },
    ],
    ...over,
  });
}

/** A Completed restore of `nightly-1` into vector-db-dr with its validation and timeline; `over` changes fields. */
export function restoreRecord(over: Partial<RestoreRecordInput> = {}): RestoreRecord {
  return RestoreRecord.parse({
    restoreId: 'nightly-1-r20261123100000',
    backupId: 'nightly-1',
    plan: PLAN,
    source: 'vault',
    sourceCluster: 'prod',
    sourceNamespace: 'vector-db',
    targetCluster: 'prod',
    targetNamespace: 'vector-db-dr',
    executionId: 'arn:aws:states:us-east-1:123456789012:execution:milvus-guard-restore:r1',
    status: 'Completed',
    requestedAt: '2026-11-23T10:00:00.000Z',
    completedAt: '2026-11-23T10:02:05.000Z',
    rtoSeconds: 125,
    createdNamespace: true,
    steps: {
      Validate: { startedAt: '2026-11-23T10:01:50.000Z', endedAt: '2026-11-23T10:02:00.000Z', outcome: 'Succeeded', detail: '2 collections validated' },
      Prepare: { startedAt: '2026-11-23T10:00:00.000Z', endedAt: '2026-11-23T10:00:01.000Z', outcome: 'Succeeded' },
      Volumes: { startedAt: '2026-11-23T10:00:05.000Z', endedAt: '2026-11-23T10:01:30.000Z', outcome: 'Succeeded' },
    },
    volumes: [{ pvc: 'data-production-milvus-etcd-0', role: 'etcd', status: 'Restored', from: 'hydrate-etcd-0' }],
    manifests: { created: 14, existing: 0, secrets: 2 },
    validation: {
      passed: true,
      collections: [
        { database: 'default', collection: 'product_embeddings', expected: 19726, restored: 19726, loaded: true, searchHits: 3, ok: true },
        { database: 'analytics', collection: 'session_vectors', expected: 24803, restored: 24803, loaded: true, searchHits: 3, ok: true },
      ],
    },
    ...over,
  });
}

import { beforeAll, describe, expect, it } from '@jest/globals';
import type { Context } from 'aws-lambda';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { loadConfigFile } from '../../core/config/parse.js';
import type { Config } from '../../core/config/schema.js';
import type { ExecutionStatus } from '../../core/workflow/executions.js';
import { makeHandler } from '../../lambdas/prepare/handler.js';
import { LocalMetrics } from '../../local/workflows/metrics.js';
import { named, scriptedWorkflow, type Script } from './harness.js';

// The real backup definition, run by aws-local-stepfunctions (see harness.ts). Prepare is the
// real handler (against the example config and an in-memory catalog); the other Tasks are
// scripted, so these tests pin down the workflow's paths: what runs after a failure, what is
// retried. test/backup/workflow.test.ts runs the same definition with every real handler on the
// local cluster.

const workflow = scriptedWorkflow('backup');
const EXECUTION_ID = workflow.executionId;

const lambdaContext = { functionName: 'prepare', awsRequestId: 'test-request', invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:Prepare', getRemainingTimeInMillis: () => 30_000 } as unknown as Context;
// A lock taken long before the test and held long after it: the execution's start time (the
// runner's clock) falls inside it whenever the test runs.
const LOCKED_AT = new Date('2026-11-23T02:00:00.000Z');
const LOCKED_UNTIL = new Date('2100-01-01T00:00:00.000Z');

let config: Config;

beforeAll(async () => {
  config = await loadConfigFile('examples/production.yaml');
});

/** Answers of every step for a backup that succeeds; tests replace some. */
function happyPath(): Script {
  const item = { pvc: 'data-production-milvus-etcd-0', role: 'etcd', snapshot: 's-1' };
  return {
    Discover: () => ({ inventoryKey: 'backups/b/inventory.json', resources: 3, volumes: [{ pvc: item.pvc, role: 'etcd' }] }),
    StartFlush: () => ({ milvusKey: 'backups/b/milvus.json', collections: 1, pending: 1, confirmed: false, deadline: '2030-01-01T00:00:00.000Z' }),
    CheckFlush: (i) => ({ ...i.flush, pending: 0, confirmed: true }),
    PauseGc: () => ({ ticket: 't-1', pausedUntil: '2030-01-01T00:00:00.000Z' }),
    PreHooks: () => ({ runs: 1, failed: 0, ignored: 0 }),
    Capture: () => ({ objects: 3, secrets: 1 }),
    Snapshot: () => ({ items: [item], ready: false, deadline: '2030-01-01T00:00:00.000Z' }),
    CheckSnapshots: (i) => ({ ...i.snapshots, ready: true }),
    RecountRows: () => ({ collections: 1, counted: 1, moved: [], movedCount: 0, uncounted: [], uncountedCount: 0 }),
    CopyObjects: () => {
      throw new Error('CopyObjects runs only for a Milvus on external S3');
    },
    Unquiesce: () => ({ gcResumed: true, postHooks: { runs: 0, failed: 0, ignored: 0 } }),
    StartExport: (i) => ({ ...i.item, clone: 'export-1', job: 'export-1', deadline: '2030-01-01T00:00:00.000Z', done: false }),
    CheckExport: (i) => ({ ...i.export, done: true }),
    FinishExport: (i) => ({ pvc: i.export.pvc, role: i.export.role, snapshot: i.export.snapshot, bytesTotal: 10, bytesUploaded: 5, files: 1 }),
    Finalize: (i) => ({ backupId: i.backup.backupName, status: 'Available' }),
    CleanUp: () => ({ exports: [], snapshots: [] }),
    UnquiesceAfterFailure: () => ({ gcResumed: true, postHooks: { runs: 0, failed: 0, ignored: 0 } }),
    MarkFailed: (i) => ({ backupId: i.backup.backupName, status: 'Failed' }),
    RecoverHolder: () => ({}),
  };
}

/** Runs the workflow with the real Prepare and `script` for the rest; records every Task call. */
function run(input: unknown, script: Script, catalog = new InMemoryCatalog(), executions: ExecutionStatus = { state: async () => 'RUNNING' }) {
  const prepare = makeHandler({
    config,
    catalog,
    executions,
    metrics: new LocalMetrics(),
    environment: { POWERTOOLS_SERVICE_NAME: 'milvus-guard', POWERTOOLS_METRICS_NAMESPACE: 'MilvusGuard', POWERTOOLS_LOG_LEVEL: 'SILENT', VAULT_NAME: 'primary', VAULT_BUCKET: 'vault-bucket', CATALOG_TABLE: 'catalog', LOCK_TTL_SECONDS: 3600 },
  });
  return workflow.run(input, { Prepare: (event) => prepare(event, lambdaContext), ...script });
}

describe('backup workflow: success', () => {
  it('runs the steps in order and ends with the Finalize result', async () => {
    const { output, states } = await run({ plan: 'milvus-production-backup' }, happyPath());

    expect(states).toEqual(['Prepare', 'Discover', 'StartFlush', 'CheckFlush', 'PauseGc', 'PreHooks', 'Capture', 'Snapshot', 'CheckSnapshots', 'RecountRows', 'Unquiesce', 'StartExport', 'CheckExport', 'FinishExport', 'Finalize']);
    expect(output).toEqual({ backupId: expect.stringMatching(/^milvus-production-backup-\d{14}$/), status: 'Available' });
  });

  it('passes the execution input, id and start time to Prepare', async () => {
    const { calls } = await run({ plan: 'milvus-production-backup', backupName: 'before-upgrade' }, happyPath());

    expect(calls[0]!.input).toEqual({ input: { plan: 'milvus-production-backup', backupName: 'before-upgrade' }, execution: { id: EXECUTION_ID, startTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/) } });
  });

  it('polls the flush until it is confirmed', async () => {
    let polls = 0;
    const script = { ...happyPath(), CheckFlush: (i: any) => ({ ...i.flush, confirmed: ++polls === 3 }) };

    const { states } = await run({ plan: 'milvus-production-backup' }, script);

    expect(states.filter((s) => s === 'CheckFlush')).toHaveLength(3);
  });

  it('hands Unquiesce the GC ticket that PauseGc returned', async () => {
    const { calls } = await run({ plan: 'milvus-production-backup' }, happyPath());

    expect(calls.find((c) => c.state === 'Unquiesce')!.input.gc).toEqual({ ticket: 't-1', pausedUntil: '2030-01-01T00:00:00.000Z' });
  });

  it('exports every snapshot in the Map and hands Finalize their results', async () => {
    const script = happyPath();
    const two = [
      { pvc: 'a', role: 'etcd', snapshot: 'sa' },
      { pvc: 'b', role: 'object-storage', snapshot: 'sb' },
    ];
    script.Snapshot = () => ({ items: two, ready: false, deadline: '2030-01-01T00:00:00.000Z' });

    const { calls } = await run({ plan: 'milvus-production-backup' }, script);

    expect(calls.filter((c) => c.state === 'StartExport').map((c) => c.input.item.pvc).sort()).toEqual(['a', 'b']);
    expect(calls.find((c) => c.state === 'Finalize')!.input.exports.map((e: { pvc: string }) => e.pvc)).toEqual(['a', 'b']);
  });
});

describe('backup workflow: a Milvus on external S3', () => {
  const bucket = { bucket: 'acme-milvus', rootPath: 'files' };
  const s3Backed = (pages: number): Script => {
    const script = happyPath();
    script.Discover = () => ({ inventoryKey: 'backups/b/inventory.json', resources: 3, volumes: [{ pvc: 'data-production-milvus-etcd-0', role: 'etcd' }], objectStorage: bucket });
    let calls = 0;
    // Each call returns one more page; the second renews the GC pause (a new ticket).
    script.CopyObjects = (i) => {
      calls += 1;
      return { done: calls === pages, cursor: { backupId: i.backup.backupName, pages: calls }, gc: calls >= 2 ? { ticket: 't-2', pausedUntil: '2031-01-01T00:00:00.000Z' } : i.gc };
    };
    return script;
  };

  it('copies the bucket between the snapshots and Unquiesce, calling again until done, first call without a cursor', async () => {
    const { states, calls } = await run({ plan: 'milvus-production-backup' }, s3Backed(3));

    expect(states.slice(states.indexOf('CheckSnapshots'), states.indexOf('Unquiesce') + 1)).toEqual(['CheckSnapshots', 'RecountRows', 'CopyObjects', 'CopyObjects', 'CopyObjects', 'Unquiesce']);
    const copies = calls.filter((c) => c.state === 'CopyObjects');
    expect(copies[0]!.input.objects).toEqual({ done: false });
    expect(copies[0]!.input.discovery.objectStorage).toEqual(bucket);
    expect(copies[0]!.input.gc).toEqual({ ticket: 't-1', pausedUntil: '2030-01-01T00:00:00.000Z' });
    expect(copies[2]!.input.objects.cursor).toEqual({ backupId: expect.any(String), pages: 2 });
  });

  it('hands Unquiesce the renewed pause, which wins over the first', async () => {
    const { calls } = await run({ plan: 'milvus-production-backup' }, s3Backed(2));

    const unquiesce = calls.find((c) => c.state === 'Unquiesce')!.input;
    expect(unquiesce.objects.gc).toEqual({ ticket: 't-2', pausedUntil: '2031-01-01T00:00:00.000Z' });
  });

  it('redoes a call whose Lambda died or timed out with the cursor it was given', async () => {
    const script = s3Backed(3);
    const copy = script.CopyObjects!;
    let attempts = 0;
    script.CopyObjects = (i) => {
      attempts += 1;
      if (attempts === 2) throw Object.assign(new Error('Task timed out after 900 seconds'), { name: 'States.Timeout' });
      return copy(i);
    };

    const { calls, states } = await run({ plan: 'milvus-production-backup' }, script);

    const copies = calls.filter((c) => c.state === 'CopyObjects');
    expect(copies).toHaveLength(4);
    expect(copies[2]!.input.objects).toEqual(copies[1]!.input.objects);
    expect(states.at(-1)).toBe('Finalize');
  });

  it('takes the failure path when the copy fails, and unquiesces', async () => {
    const script = s3Backed(3);
    script.CopyObjects = () => {
      throw Object.assign(new Error('listing s3://acme-milvus/files/ was refused (AccessDenied)'), { name: 'ObjectCopyAccessDenied' });
    };

    const { error, states } = await run({ plan: 'milvus-production-backup' }, script);

    expect(error!.name).toBe('ObjectCopyAccessDenied');
    expect(states.slice(states.indexOf('CopyObjects'))).toEqual(['CopyObjects', 'CleanUp', 'UnquiesceAfterFailure', 'MarkFailed']);
  });
});

describe('backup workflow: rejected input', () => {
  it('fails with InvalidInput naming the plans that exist when the plan is unknown', async () => {
    const { error, states } = await run({ plan: 'no-such-plan' }, happyPath());

    expect(error!.name).toBe('InvalidInput');
    expect(error!.message).toMatch(/plan "no-such-plan" is not defined in the config; defined: milvus-production-backup/);
    expect(states).toEqual(['Prepare']);
  });

  it('fails with InvalidInput when the input has an unknown key', async () => {
    const { error } = await run({ plan: 'milvus-production-backup', retention: 'forever' }, happyPath());

    expect(error!.name).toBe('InvalidInput');
    expect(error!.message).toMatch(/retention/);
  });

  it('fails a second backup of a running plan with BackupInProgress, touching nothing', async () => {
    const catalog = new InMemoryCatalog();
    await catalog.acquireLock('milvus-production-backup', { backupId: 'first', executionId: 'arn:first' }, LOCKED_AT, LOCKED_UNTIL);

    const { error, states } = await run({ plan: 'milvus-production-backup' }, happyPath(), catalog);

    expect(error!.name).toBe('BackupInProgress');
    expect(states).toEqual(['Prepare']);
    expect(await catalog.lockHolder('milvus-production-backup', LOCKED_AT)).toEqual({ backupId: 'first', executionId: 'arn:first' });
  });
});

describe('backup workflow: a lock whose holder has ended', () => {
  const ended: ExecutionStatus = { state: async (arn) => (arn === 'arn:first' ? 'ABORTED' : 'RUNNING') };

  it('recovers after the holder, then prepares again and runs the backup', async () => {
    const catalog = new InMemoryCatalog();
    await catalog.acquireLock('milvus-production-backup', { backupId: 'first', executionId: 'arn:first' }, LOCKED_AT, LOCKED_UNTIL);
    const recover = async () => {
      await catalog.releaseLock('milvus-production-backup', 'arn:first');
      return { recovered: 'first' };
    };

    const { error, states, calls } = await run({ plan: 'milvus-production-backup' }, { ...happyPath(), RecoverHolder: recover }, catalog, ended);

    expect(error).toBeUndefined();
    expect(states.slice(0, 4)).toEqual(['Prepare', 'RecoverHolder', 'Prepare', 'Discover']);
    expect(calls.find((c) => c.state === 'RecoverHolder')!.input).toEqual({ input: { plan: 'milvus-production-backup' } });
  });

  it('fails with BackupInProgress when the recovery finds the holder running after all', async () => {
    const catalog = new InMemoryCatalog();
    await catalog.acquireLock('milvus-production-backup', { backupId: 'first', executionId: 'arn:first' }, LOCKED_AT, LOCKED_UNTIL);

    const { error, states } = await run({ plan: 'milvus-production-backup' }, { ...happyPath(), RecoverHolder: () => Promise.reject(named('BackupInProgress', 'a backup of plan milvus-production-backup is already running')) }, catalog, ended);

    expect(error!.name).toBe('BackupInProgress');
    expect(states).toEqual(['Prepare', 'RecoverHolder']);
  });
});

describe('backup workflow: retries', () => {
  it('retries a Lambda service exception', async () => {
    let calls = 0;
    const script = { ...happyPath(), Discover: (i: any) => (++calls === 1 ? Promise.reject(named('Lambda.ServiceException')) : happyPath().Discover!(i)) };

    const { output } = await run({ plan: 'milvus-production-backup' }, script);

    expect(calls).toBe(2);
    expect(output).toMatchObject({ status: 'Available' });
  });

  it.each(['KubernetesTransientError', 'ThrottlingException', 'SlowDown'])('retries %s', async (name) => {
    let calls = 0;
    const script = { ...happyPath(), Capture: (i: any) => (++calls <= 2 ? Promise.reject(named(name)) : happyPath().Capture!(i)) };

    const { output } = await run({ plan: 'milvus-production-backup' }, script);

    expect(calls).toBe(3);
    expect(output).toMatchObject({ status: 'Available' });
  });

  it('does not retry a permanent error', async () => {
    let calls = 0;
    const script = { ...happyPath(), Capture: () => (calls++, Promise.reject(named('KubernetesRequestError', 'forbidden'))) };

    await run({ plan: 'milvus-production-backup' }, script);

    expect(calls).toBe(1);
  });
});

describe('backup workflow: the counts after the snapshots', () => {
  it('are passed over when RecountRows fails after its retries: the snapshots are good, so the backup goes on', async () => {
    const script = { ...happyPath(), RecountRows: () => Promise.reject(named('KubernetesTransientError', 'service proxy to production-milvus answered 503')) };

    const { output, states, calls } = await run({ plan: 'milvus-production-backup' }, script);

    expect(states.filter((s) => s === 'RecountRows').length).toBeGreaterThan(1);
    expect(states.slice(states.lastIndexOf('RecountRows'))).toEqual(['RecountRows', 'Unquiesce', 'StartExport', 'CheckExport', 'FinishExport', 'Finalize']);
    expect(calls.find((c) => c.state === 'Unquiesce')!.input.recountError).toEqual({ Error: 'KubernetesTransientError', Cause: expect.stringContaining('503') });
    expect(output).toMatchObject({ status: 'Available' });
  });
});

describe('backup workflow: failure path', () => {
  it('cleans up, unquiesces, marks the backup failed and fails with the original error', async () => {
    const script = { ...happyPath(), CheckSnapshots: () => Promise.reject(named('SnapshotFailed', 'VolumeSnapshot s-1 failed: disk gone')) };

    const { error, states, calls } = await run({ plan: 'milvus-production-backup' }, script);

    expect(states.slice(-4)).toEqual(['CheckSnapshots', 'CleanUp', 'UnquiesceAfterFailure', 'MarkFailed']);
    expect(calls.find((c) => c.state === 'UnquiesceAfterFailure')!.input.gc).toEqual({ ticket: 't-1', pausedUntil: '2030-01-01T00:00:00.000Z' });
    expect(calls.find((c) => c.state === 'MarkFailed')!.input.error).toEqual({ Error: 'SnapshotFailed', Cause: expect.stringContaining('disk gone') });
    expect(error).toMatchObject({ name: 'SnapshotFailed', message: expect.stringContaining('disk gone') });
  });

  it('unquiesces after a failure before GC was paused, without a ticket', async () => {
    const script = { ...happyPath(), Discover: () => Promise.reject(named('NothingToProtectError')) };

    const { states, calls } = await run({ plan: 'milvus-production-backup' }, script);

    expect(states).toEqual(['Prepare', 'Discover', 'CleanUp', 'UnquiesceAfterFailure', 'MarkFailed']);
    expect(calls.find((c) => c.state === 'UnquiesceAfterFailure')!.input.gc).toBeUndefined();
  });

  it('does not unquiesce a second time when an export fails after Unquiesce', async () => {
    const script = { ...happyPath(), CheckExport: () => Promise.reject(named('ExportFailed')) };

    const { states, error } = await run({ plan: 'milvus-production-backup' }, script);

    expect(states.filter((s) => s.startsWith('Unquiesce'))).toEqual(['Unquiesce']);
    expect(states.slice(-2)).toEqual(['CleanUp', 'MarkFailed']);
    expect(error!.name).toBe('ExportFailed');
  });

  it('does not run the post hooks again when Unquiesce itself failed', async () => {
    const script = { ...happyPath(), Unquiesce: () => Promise.reject(named('HookFailed')) };

    const { states, error } = await run({ plan: 'milvus-production-backup' }, script);

    expect(states.slice(-3)).toEqual(['Unquiesce', 'CleanUp', 'MarkFailed']);
    expect(error!.name).toBe('HookFailed');
  });

  it('still marks the backup failed when the clean-up fails', async () => {
    const script = { ...happyPath(), Capture: () => Promise.reject(named('HookFailed')), CleanUp: () => Promise.reject(named('KubernetesRequestError')) };

    const { states, error } = await run({ plan: 'milvus-production-backup' }, script);

    expect(states.slice(-3)).toEqual(['CleanUp', 'UnquiesceAfterFailure', 'MarkFailed']);
    expect(error!.name).toBe('HookFailed');
  });
});

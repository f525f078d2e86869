import { describe, expect, it } from '@jest/globals';
import { loadDefinition } from '../../core/workflow/asl.js';
import { inputOf, named, scriptedWorkflow, type Script } from './harness.js';

// The real restore definition, run by aws-local-stepfunctions with every Task scripted (see
// harness.ts): these tests pin down the workflow's paths (the order of the steps, the polling
// loops, what runs after a failure, what is retried), not what the steps do.

const { run, executionId: EXECUTION_ID } = scriptedWorkflow('restore');

const PREPARED = { restoreId: 'restore-1', backupId: 'milvus-production-backup-20300101020000', to: { namespace: 'vector-db-restored' }, source: 'vault' };
const SUCCESS_STATES = ['PrepareRestore', 'VerifyBackup', 'StartThaw', 'CreateNamespace', 'RestoreVolumes', 'CheckVolumes', 'ApplyManifests', 'CheckReadiness', 'Validate', 'Complete'];

/** Answers of every step for a restore that succeeds; tests replace some. */
function happyPath(): Script {
  return {
    PrepareRestore: () => PREPARED,
    VerifyBackup: () => ({ volumes: 2, packs: 10, archived: 0 }),
    StartThaw: () => ({ done: true, pending: [], beyond: 0, frozen: 0 }),
    CheckThaw: (i) => ({ ...i.thaw, done: true, pending: [] }),
    CreateNamespace: () => ({ created: true }),
    RestoreVolumes: () => ({ items: [{ pvc: 'data-etcd-0' }], ready: false, deadline: '2030-01-01T00:00:00.000Z' }),
    CheckVolumes: (i) => ({ ...i.volumes, ready: true }),
    RestoreObjects: () => {
      throw new Error('RestoreObjects runs only for a backup with a bucket copy');
    },
    ApplyManifests: () => ({ created: 7, existing: 0, secrets: 1 }),
    CheckReadiness: () => ({ ready: true, waitingFor: [], deadline: '2030-01-01T00:00:00.000Z' }),
    Validate: () => ({ done: true, loading: [], collections: [{ name: 'docs', expected: 10, restored: 10 }] }),
    Complete: (i) => ({ restoreId: i.restore.restoreId, status: 'Completed', rtoSeconds: 600 }),
    CleanUpRestore: () => ({ removed: ['Job/hydrate-1'], namespaceDeleted: false }),
    MarkRestoreFailed: (i) => ({ restoreId: i.restore.restoreId, status: 'Failed' }),
  };
}

const INPUT = { backupId: PREPARED.backupId, targetNamespace: 'vector-db-restored' };

describe('restore workflow: success', () => {
  it('runs the steps in restore order and ends with the Complete result', async () => {
    const { output, states } = await run(INPUT, happyPath());

    expect(states).toEqual(SUCCESS_STATES);
    expect(output).toEqual({ restoreId: 'restore-1', status: 'Completed', rtoSeconds: 600 });
  });

  it('passes the execution input, id and start time to PrepareRestore', async () => {
    const { calls } = await run(INPUT, happyPath());

    expect(inputOf(calls, 'PrepareRestore')).toEqual({ input: INPUT, execution: { id: EXECUTION_ID, startTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/) } });
  });

  it('hands every later step the restore that PrepareRestore prepared', async () => {
    const { calls } = await run(INPUT, happyPath());

    expect(calls).toHaveLength(SUCCESS_STATES.length);
    for (const call of calls.slice(1)) expect(call.input.restore).toEqual(PREPARED);
  });
});

describe('restore workflow: a backup of a Milvus on external S3', () => {
  const objects = { commit: { sha256: 'a'.repeat(64), objects: 3, bytes: 30 }, target: { bucket: 'acme-restores', prefix: 'restore-1' } };

  it('copies the bucket objects back after the volumes and before the manifests, calling again until done', async () => {
    const script = happyPath();
    script.PrepareRestore = () => ({ ...PREPARED, objects });
    let n = 0;
    script.RestoreObjects = (i) => ({ done: ++n === 2, cursor: { backupId: i.restore.backupId, pages: n } });

    const { states, calls } = await run(INPUT, script);

    expect(states.slice(states.indexOf('CheckVolumes'), states.indexOf('ApplyManifests') + 1)).toEqual(['CheckVolumes', 'RestoreObjects', 'RestoreObjects', 'ApplyManifests']);
    const restores = calls.filter((c) => c.state === 'RestoreObjects');
    expect(restores[0]!.input.objects).toEqual({ done: false });
    expect(restores[1]!.input.objects.cursor.pages).toBe(1);
  });

  it('takes the failure path when a vault object is not what the backup recorded', async () => {
    const script = happyPath();
    script.PrepareRestore = () => ({ ...PREPARED, objects });
    script.RestoreObjects = () => {
      throw Object.assign(new Error("the vault's copy is not the one backup b recorded"), { name: 'SourceObjectChanged' });
    };

    const { error, states } = await run(INPUT, script);

    expect(error!.name).toBe('SourceObjectChanged');
    expect(states.slice(states.indexOf('RestoreObjects'))).toEqual(['RestoreObjects', 'CleanUpRestore', 'MarkRestoreFailed']);
  });
});

describe('restore workflow: polling', () => {
  it('polls the volumes until they are ready, handing each check the previous state', async () => {
    let polls = 0;
    const script = { ...happyPath(), CheckVolumes: (i: any) => ({ ...i.volumes, polls: ++polls, ready: polls === 3 }) };

    const { calls, states } = await run(INPUT, script);

    const checks = calls.filter((c) => c.state === 'CheckVolumes').map((c) => c.input.volumes);
    expect(checks).toHaveLength(3);
    expect(checks[0]).toEqual({ items: [{ pvc: 'data-etcd-0' }], ready: false, deadline: '2030-01-01T00:00:00.000Z' });
    expect(checks[2]).toMatchObject({ polls: 2, ready: false });
    expect(states.indexOf('ApplyManifests')).toBe(states.lastIndexOf('CheckVolumes') + 1);
  });

  it('checks readiness as soon as the manifests are applied, waiting only between polls', () => {
    const { States } = JSON.parse(loadDefinition('restore')) as { States: Record<string, { Next?: string; Default?: string }> };

    expect(States.ApplyManifests?.Next).toBe('StartReadinessWait');
    expect(States.StartReadinessWait?.Next).toBe('CheckReadiness');
    expect(States.Ready?.Default).toBe('WaitForReadiness');
    expect(States.WaitForReadiness?.Next).toBe('CheckReadiness');
  });

  it('starts the readiness loop without a deadline and hands each check the previous answer', async () => {
    let polls = 0;
    const script = { ...happyPath(), CheckReadiness: () => ({ ready: ++polls === 2, waitingFor: polls === 2 ? [] : ['StatefulSet/etcd'], deadline: 'D' }) };

    const { calls } = await run(INPUT, script);

    const checks = calls.filter((c) => c.state === 'CheckReadiness').map((c) => c.input.readiness);
    expect(checks).toEqual([{ ready: false, waitingFor: [] }, { ready: false, waitingFor: ['StatefulSet/etcd'], deadline: 'D' }]);
  });

  it('validates again while collections are loading, handing each round the previous one', async () => {
    let rounds = 0;
    const script = { ...happyPath(), Validate: () => (++rounds === 1 ? { done: false, loading: ['docs'], deadline: 'D' } : { done: true, loading: [] }) };

    const { calls, states, entered } = await run(INPUT, script);

    expect(calls.filter((c) => c.state === 'Validate').map((c) => c.input.validation)).toEqual([{ done: false, loading: [] }, { done: false, loading: ['docs'], deadline: 'D' }]);
    expect(states.at(-1)).toBe('Complete');
    expect(entered.slice(entered.indexOf('Validate'))).toEqual(['Validate', 'Validated', 'WaitForLoad', 'Validate', 'Validated', 'Complete', 'Completed']);
  });

  it('starts the next round at once, without WaitForLoad, after a round that only looked', async () => {
    let rounds = 0;
    const look = { done: false, loading: ['default.docs'], deadline: 'D', released: ['analytics.logs'], again: true };
    const script = { ...happyPath(), Validate: () => (++rounds === 1 ? look : { done: true, loading: [] }) };

    const { calls, entered } = await run(INPUT, script);

    expect(calls.filter((c) => c.state === 'Validate').map((c) => c.input.validation)).toEqual([{ done: false, loading: [] }, look]);
    expect(entered.slice(entered.indexOf('Validate'))).toEqual(['Validate', 'Validated', 'Validate', 'Validated', 'Complete', 'Completed']);
  });
});

describe('restore workflow: thawing archived packs', () => {
  const THAWING = { done: false, pending: ['p1', 'p2', 'p3'], beyond: 0, frozen: 3, deadline: '2030-01-03T00:00:00.000Z' };

  it('hands StartThaw the restore and what VerifyBackup found', async () => {
    const { calls } = await run(INPUT, happyPath());

    expect(inputOf(calls, 'StartThaw')).toEqual({ restore: PREPARED, verified: { volumes: 2, packs: 10, archived: 0 } });
  });

  it('goes straight on to CreateNamespace when nothing needs a thaw, without polling', async () => {
    const { states } = await run(INPUT, happyPath());

    expect(states.slice(1, 4)).toEqual(['VerifyBackup', 'StartThaw', 'CreateNamespace']);
    expect(states).not.toContain('CheckThaw');
  });

  it('polls CheckThaw until every pack is thawed, handing each poll the previous one, before the namespace is created', async () => {
    let polls = 0;
    const script = {
      ...happyPath(),
      StartThaw: () => THAWING,
      CheckThaw: (i: any) => (++polls === 3 ? { ...i.thaw, pending: [], done: true } : { ...i.thaw, pending: i.thaw.pending.slice(1) }),
    };

    const { calls, states, output } = await run(INPUT, script);

    expect(calls.filter((c) => c.state === 'CheckThaw').map((c) => c.input)).toEqual([
      { restore: PREPARED, thaw: THAWING },
      { restore: PREPARED, thaw: { ...THAWING, pending: ['p2', 'p3'] } },
      { restore: PREPARED, thaw: { ...THAWING, pending: ['p3'] } },
    ]);
    expect(states.slice(1, 7)).toEqual(['VerifyBackup', 'StartThaw', 'CheckThaw', 'CheckThaw', 'CheckThaw', 'CreateNamespace']);
    expect(output).toMatchObject({ status: 'Completed' });
  });

  it('takes the failure path with ThawTimeout from CheckThaw, having created nothing', async () => {
    const script = { ...happyPath(), StartThaw: () => THAWING, CheckThaw: () => Promise.reject(named('ThawTimeout', '3 pack(s) of backup b were still frozen')) };

    const { error, states } = await run(INPUT, script);

    expect(states).toEqual(['PrepareRestore', 'VerifyBackup', 'StartThaw', 'CheckThaw', 'CleanUpRestore', 'MarkRestoreFailed']);
    expect(error).toMatchObject({ name: 'ThawTimeout', message: expect.stringContaining('3 pack(s)') });
  });

  it('retries a throttled CheckThaw and carries on polling', async () => {
    let calls = 0;
    const script = { ...happyPath(), StartThaw: () => THAWING, CheckThaw: (i: any) => (++calls === 1 ? Promise.reject(named('SlowDown')) : { ...i.thaw, pending: [], done: true }) };

    const { output } = await run(INPUT, script);

    expect(calls).toBe(2);
    expect(output).toMatchObject({ status: 'Completed' });
  });
});

describe('restore workflow: rejected input', () => {
  it.each(['InvalidInput', 'BackupNotFound', 'TargetNamespaceNotEmpty'])('fails with %s from PrepareRestore, creating nothing', async (name) => {
    const script = { ...happyPath(), PrepareRestore: () => Promise.reject(named(name, `${name}: what to fix`)) };

    const { error, states } = await run(INPUT, script);

    expect(error).toMatchObject({ name, message: `${name}: what to fix` });
    expect(states).toEqual(['PrepareRestore']);
  });
});

describe('restore workflow: failure path', () => {
  it('cleans up, marks the restore failed and fails with the original error after a failure past CreateNamespace', async () => {
    const script = { ...happyPath(), RestoreVolumes: () => Promise.reject(named('SnapshotUnavailable', 'VolumeSnapshotContent gone')) };

    const { error, states, calls } = await run(INPUT, script);

    expect(states).toEqual(['PrepareRestore', 'VerifyBackup', 'StartThaw', 'CreateNamespace', 'RestoreVolumes', 'CleanUpRestore', 'MarkRestoreFailed']);
    expect(inputOf(calls, 'CleanUpRestore')).toEqual({ restore: PREPARED });
    expect(inputOf(calls, 'MarkRestoreFailed')).toMatchObject({
      restore: PREPARED,
      error: { Error: 'SnapshotUnavailable', Cause: expect.stringContaining('VolumeSnapshotContent gone') },
      cleanup: { removed: ['Job/hydrate-1'], namespaceDeleted: false },
    });
    expect(error).toMatchObject({ name: 'SnapshotUnavailable', message: expect.stringContaining('VolumeSnapshotContent gone') });
  });

  it.each(['VerifyBackup', 'StartThaw', 'CreateNamespace', 'CheckVolumes', 'ApplyManifests', 'CheckReadiness', 'Validate', 'Complete'])('takes the failure path when %s fails', async (state) => {
    const script = { ...happyPath(), [state]: () => Promise.reject(named('StepFailed')) };

    const { error, states } = await run(INPUT, script);

    expect(states.slice(-3)).toEqual([state, 'CleanUpRestore', 'MarkRestoreFailed']);
    expect(error!.name).toBe('StepFailed');
  });

  it('fails at the volume deadline that CheckVolumes enforces', async () => {
    const script = { ...happyPath(), CheckVolumes: () => Promise.reject(named('VolumeRestoreTimeout', 'PVC data-etcd-0 not bound after 3600 seconds')) };

    const { error, states } = await run(INPUT, script);

    expect(states.slice(-2)).toEqual(['CleanUpRestore', 'MarkRestoreFailed']);
    expect(error).toMatchObject({ name: 'VolumeRestoreTimeout' });
  });

  it('still marks the restore failed, with the cleanup error, when the cleanup fails', async () => {
    const script = { ...happyPath(), ApplyManifests: () => Promise.reject(named('ManifestRejected')), CleanUpRestore: () => Promise.reject(named('KubernetesRequestError', 'forbidden')) };

    const { error, states, calls } = await run(INPUT, script);

    expect(states.slice(-2)).toEqual(['CleanUpRestore', 'MarkRestoreFailed']);
    expect(inputOf(calls, 'MarkRestoreFailed')).toMatchObject({ cleanupError: { Error: 'KubernetesRequestError', Cause: expect.stringContaining('forbidden') } });
    expect(inputOf(calls, 'MarkRestoreFailed').cleanup).toBeUndefined();
    expect(error!.name).toBe('ManifestRejected');
  });

  it('fails with the original error even when marking the restore failed fails', async () => {
    const script = { ...happyPath(), Validate: () => Promise.reject(named('RowCountMismatch')), MarkRestoreFailed: () => Promise.reject(named('ConditionalCheckFailedException')) };

    const { error } = await run(INPUT, script);

    expect(error!.name).toBe('RowCountMismatch');
  });
});

describe('restore workflow: retries', () => {
  it.each(['Lambda.ServiceException', 'KubernetesTransientError', 'ThrottlingException'])('retries %s and carries on', async (name) => {
    let calls = 0;
    const script = { ...happyPath(), ApplyManifests: (i: any) => (++calls <= 2 ? Promise.reject(named(name)) : happyPath().ApplyManifests!(i)) };

    const { output } = await run(INPUT, script);

    expect(calls).toBe(3);
    expect(output).toMatchObject({ status: 'Completed' });
  });

  it('does not retry a permanent error', async () => {
    let calls = 0;
    const script = { ...happyPath(), VerifyBackup: () => (calls++, Promise.reject(named('BackupIncomplete', 'pack missing'))) };

    await run(INPUT, script);

    expect(calls).toBe(1);
  });
});

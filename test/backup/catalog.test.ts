import { mkdir, mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { BackupExistsError, BackupHeldError, BackupInProgressError, BackupNotFoundError, RecordFinalError, RecordStatusError, RestoreExistsError, RestoreNotFoundError, type BackupCatalog } from '../../core/catalog/catalog.js';
import { LocalCatalog } from '../../core/catalog/local.js';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { causeText } from '../../core/backup/workflow.js';
import { backupInput, restoreInput } from './catalog-helpers.js';

// The catalog contract, run against every implementation that keeps documents: the in-memory
// test double and the file-backed catalog of the embedded default. (DynamoCatalog's requests
// are tested in dynamo-catalog.test.ts.)

const NOW = new Date('2026-11-23T02:00:00.000Z');
const LATER = new Date('2026-11-24T02:00:00.000Z');
const holder = (n: number) => ({ backupId: `b-${n}`, executionId: `arn:exec:${n}` });
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const implementations: [string, () => Promise<BackupCatalog>][] = [
  ['InMemoryCatalog', async () => new InMemoryCatalog()],
  [
    'LocalCatalog',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'mg-catalog-'));
      dirs.push(dir);
      return new LocalCatalog(join(dir, 'catalog'));
    },
  ],
];

describe.each(implementations)('%s', (_name, make) => {
  describe('plan lock', () => {
    it('is taken by the first execution and refused to a second with BackupInProgress naming the holder', async () => {
      const catalog = await make();
      await catalog.acquireLock('p', holder(1), NOW, LATER);

      const second = catalog.acquireLock('p', holder(2), NOW, LATER);

      await expect(second).rejects.toThrow(BackupInProgressError);
      await expect(second).rejects.toThrow(/backup b-1, execution arn:exec:1/);
    });

    it('is taken again by the execution that holds it (a retried Prepare)', async () => {
      const catalog = await make();
      await catalog.acquireLock('p', holder(1), NOW, LATER);

      await expect(catalog.acquireLock('p', holder(1), NOW, LATER)).resolves.toBeUndefined();
    });

    it('can be taken once it has expired', async () => {
      const catalog = await make();
      await catalog.acquireLock('p', holder(1), NOW, new Date(NOW.getTime() + 1000));

      await catalog.acquireLock('p', holder(2), LATER, new Date(LATER.getTime() + 1000));

      expect(await catalog.lockHolder('p', LATER)).toEqual(holder(2));
    });

    it('is released only by its holder', async () => {
      const catalog = await make();
      await catalog.acquireLock('p', holder(1), NOW, LATER);

      expect(await catalog.releaseLock('p', 'arn:exec:2')).toBe(false);
      expect(await catalog.releaseLock('p', 'arn:exec:1')).toBe(true);
      expect(await catalog.lockHolder('p', NOW)).toBeUndefined();
    });

    it('locks each plan separately', async () => {
      const catalog = await make();
      await catalog.acquireLock('p', holder(1), NOW, LATER);

      await expect(catalog.acquireLock('q', holder(2), NOW, LATER)).resolves.toBeUndefined();
    });

    it('lets exactly one of two racing executions win', async () => {
      const catalog = await make();

      const results = await Promise.allSettled([catalog.acquireLock('p', holder(1), NOW, LATER), catalog.acquireLock('p', holder(2), NOW, LATER)]);

      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    });
  });

  describe('backup records', () => {
    it('are created once; the same execution may create again, another may not', async () => {
      const catalog = await make();
      await catalog.createBackup(backupInput('a', '2026-11-23T02:00:00.000Z'));

      await expect(catalog.createBackup(backupInput('a', '2026-11-23T02:00:00.000Z'))).resolves.toBeUndefined();
      await expect(catalog.createBackup({ ...backupInput('a', '2026-11-23T02:00:00.000Z'), executionId: 'other' })).rejects.toThrow(BackupExistsError);
    });

    it('take updates and keep what the update does not name', async () => {
      const catalog = await make();
      await catalog.createBackup(backupInput('a', '2026-11-23T02:00:00.000Z'));

      await catalog.updateBackup('a', { status: 'Available', sizeBytes: 42 });

      expect(await catalog.getBackup('a')).toMatchObject({ status: 'Available', sizeBytes: 42, plan: 'p', cluster: 'prod' });
    });

    it('refuse an update of a backup that does not exist', async () => {
      const catalog = await make();

      await expect(catalog.updateBackup('missing', { status: 'Failed' })).rejects.toThrow(BackupNotFoundError);
    });

    it('are final once Failed: no update or step may change them (RecordFinal)', async () => {
      const catalog = await make();
      await catalog.createBackup(backupInput('b', NOW.toISOString()));
      await catalog.updateBackup('b', { status: 'Failed', failure: { step: 'Export', error: 'JobFailed', cause: 'the data mover crashed' } });

      await expect(catalog.recordStep('b', 'Export', { endedAt: LATER.toISOString(), outcome: 'Failed', detail: 'another volume' })).rejects.toThrow(RecordFinalError);
      await expect(catalog.updateBackup('b', { status: 'Available' })).rejects.toMatchObject({ name: 'RecordFinal' });
      expect(await catalog.getBackup('b')).toMatchObject({ status: 'Failed', failure: { cause: 'the data mover crashed' }, steps: {} });
    });

    it('move out of Failed only by an update that names the statuses it expects, into Expired, which is final too', async () => {
      const catalog = await make();
      await catalog.createBackup(backupInput('b', NOW.toISOString()));
      await catalog.updateBackup('b', { status: 'Failed', failure: { step: 'Export', error: 'JobFailed', cause: 'the data mover crashed' } });

      await catalog.updateBackup('b', { status: 'Expired', expired: { at: LATER.toISOString(), reason: 'failed more than 7 days ago', cleared: false } }, { onlyIf: ['Available', 'Failed'] });

      await expect(catalog.updateBackup('b', { retainUntil: LATER.toISOString() })).rejects.toThrow(new RecordFinalError('b', 'Expired'));
      await expect(catalog.updateBackup('b', { hold: { reason: 'audit', at: LATER.toISOString() } }, { onlyIf: ['Available'] })).rejects.toThrow(new RecordStatusError('b', 'Expired', ['Available']));
      await catalog.updateBackup('b', { expired: { at: LATER.toISOString(), reason: 'failed more than 7 days ago', cleared: true } }, { onlyIf: ['Expired'] });
      expect(await catalog.getBackup('b')).toMatchObject({ status: 'Expired', expired: { cleared: true }, failure: { cause: 'the data mover crashed' } });
    });

    it('refuse to expire a held backup when asked unlessHeld, and take it once the hold is released (null)', async () => {
      const catalog = await make();
      await catalog.createBackup(backupInput('b', NOW.toISOString(), { status: 'Available' }));
      await catalog.updateBackup('b', { hold: { reason: 'audit', at: NOW.toISOString() } }, { onlyIf: ['Available'] });

      await expect(catalog.updateBackup('b', { status: 'Expired' }, { onlyIf: ['Available'], unlessHeld: true })).rejects.toThrow(BackupHeldError);
      await catalog.updateBackup('b', { hold: null }, { onlyIf: ['Available'] });
      await catalog.updateBackup('b', { status: 'Expired' }, { onlyIf: ['Available'], unlessHeld: true });
      expect(await catalog.getBackup('b')).toMatchObject({ status: 'Expired', hold: null });
    });

    it('keep retention runs newest first; recording one again for its execution is a no-op', async () => {
      const catalog = await make();
      const run = (runId: string, now: string) => ({ runId, executionId: `arn:exec:${runId}`, status: 'Completed' as const, now, dryRun: false, plans: [{ plan: 'p', kept: 3, expired: ['b-1'], locksExtended: 2 }], skipped: [], packsDeleted: 1, bytesFreed: 42, reportKey: `retention/${runId}.json` });
      await catalog.recordRetentionRun(run('r1', NOW.toISOString()));
      await catalog.recordRetentionRun(run('r2', LATER.toISOString()));
      await catalog.recordRetentionRun(run('r2', LATER.toISOString()));

      expect((await catalog.listRetentionRuns()).map((r) => r.runId)).toEqual(['r2', 'r1']);
      expect((await catalog.listBackups()).length).toBe(0);
    });

    it('keep the first start of a step and take its end later', async () => {
      const catalog = await make();
      await catalog.createBackup(backupInput('a', '2026-11-23T02:00:00.000Z'));

      await catalog.recordStep('a', 'Quiesce', { startedAt: '2026-11-23T02:00:01.000Z' });
      await catalog.recordStep('a', 'Quiesce', { startedAt: '2026-11-23T02:00:05.000Z' });
      await catalog.recordStep('a', 'Quiesce', { endedAt: '2026-11-23T02:00:09.000Z', outcome: 'Succeeded' });

      expect((await catalog.getBackup('a'))!.steps.Quiesce).toEqual({ startedAt: '2026-11-23T02:00:01.000Z', endedAt: '2026-11-23T02:00:09.000Z', outcome: 'Succeeded' });
    });

    it('are listed newest first, optionally for one plan', async () => {
      const catalog = await make();
      await catalog.createBackup(backupInput('old', '2026-11-21T02:00:00.000Z'));
      await catalog.createBackup(backupInput('new', '2026-11-23T02:00:00.000Z'));
      await catalog.createBackup(backupInput('other', '2026-11-22T02:00:00.000Z', { plan: 'q' }));

      expect((await catalog.listBackups()).map((r) => r.backupId)).toEqual(['new', 'other', 'old']);
      expect((await catalog.listBackups({ plan: 'p' })).map((r) => r.backupId)).toEqual(['new', 'old']);
    });
  });

  describe('restore records', () => {
    it('are created once; the same execution may create again, another gets RestoreExists naming the owner', async () => {
      const catalog = await make();
      await catalog.createRestore(restoreInput('r', '2026-11-23T09:00:00.000Z'));

      await expect(catalog.createRestore(restoreInput('r', '2026-11-23T09:00:00.000Z'))).resolves.toBeUndefined();
      const other = catalog.createRestore({ ...restoreInput('r', '2026-11-23T09:00:00.000Z'), executionId: 'arn:exec:other' });
      await expect(other).rejects.toThrow(RestoreExistsError);
      await expect(other).rejects.toThrow(/execution arn:exec:r/);
    });

    it('read back with the defaults of the schema', async () => {
      const catalog = await make();
      await catalog.createRestore(restoreInput('r', '2026-11-23T09:00:00.000Z'));

      expect(await catalog.getRestore('r')).toEqual({ ...restoreInput('r', '2026-11-23T09:00:00.000Z'), steps: {}, volumes: [] });
    });

    it('read as undefined when they do not exist', async () => {
      const catalog = await make();

      expect(await catalog.getRestore('missing')).toBeUndefined();
    });

    it('take updates and keep what the update does not name', async () => {
      const catalog = await make();
      await catalog.createRestore(restoreInput('r', '2026-11-23T09:00:00.000Z'));
      const validation = { passed: true, collections: [{ database: 'default', collection: 'docs', expected: 1000, restored: 1000, loaded: true, ok: true }] };

      await catalog.updateRestore('r', { status: 'Completed', rtoSeconds: 754, validation });

      expect(await catalog.getRestore('r')).toMatchObject({ status: 'Completed', rtoSeconds: 754, validation, backupId: 'a', targetNamespace: 'vector-db-restore' });
    });

    it('refuse an update of a restore that does not exist', async () => {
      const catalog = await make();

      await expect(catalog.updateRestore('missing', { status: 'Failed' })).rejects.toThrow(RestoreNotFoundError);
    });

    it('refuse a step of a restore that does not exist', async () => {
      const catalog = await make();

      await expect(catalog.recordRestoreStep('missing', 'Verify', { startedAt: '2026-11-23T09:00:01.000Z' })).rejects.toThrow(RestoreNotFoundError);
    });

    it('move out of Failed only by an update that names the statuses it expects, into Expired, which is final too', async () => {
      const catalog = await make();
      await catalog.createBackup(backupInput('b', NOW.toISOString()));
      await catalog.updateBackup('b', { status: 'Failed', failure: { step: 'Export', error: 'JobFailed', cause: 'the data mover crashed' } });

      await catalog.updateBackup('b', { status: 'Expired', expired: { at: LATER.toISOString(), reason: 'failed more than 7 days ago', cleared: false } }, { onlyIf: ['Available', 'Failed'] });

      await expect(catalog.updateBackup('b', { retainUntil: LATER.toISOString() })).rejects.toThrow(new RecordFinalError('b', 'Expired'));
      await expect(catalog.updateBackup('b', { hold: { reason: 'audit', at: LATER.toISOString() } }, { onlyIf: ['Available'] })).rejects.toThrow(new RecordStatusError('b', 'Expired', ['Available']));
      await catalog.updateBackup('b', { expired: { at: LATER.toISOString(), reason: 'failed more than 7 days ago', cleared: true } }, { onlyIf: ['Expired'] });
      expect(await catalog.getBackup('b')).toMatchObject({ status: 'Expired', expired: { cleared: true }, failure: { cause: 'the data mover crashed' } });
    });

    it('keep the first start of a step and take its end later', async () => {
      const catalog = await make();
      await catalog.createRestore(restoreInput('r', '2026-11-23T09:00:00.000Z'));

      await catalog.recordRestoreStep('r', 'Volumes', { startedAt: '2026-11-23T09:00:01.000Z' });
      await catalog.recordRestoreStep('r', 'Volumes', { startedAt: '2026-11-23T09:00:31.000Z' });
      await catalog.recordRestoreStep('r', 'Volumes', { endedAt: '2026-11-23T09:05:00.000Z', outcome: 'Succeeded', detail: '3 volume(s) hydrated' });

      expect((await catalog.getRestore('r'))!.steps.Volumes).toEqual({ startedAt: '2026-11-23T09:00:01.000Z', endedAt: '2026-11-23T09:05:00.000Z', outcome: 'Succeeded', detail: '3 volume(s) hydrated' });
    });

    it('take the end of a step recorded only when it ended as its start', async () => {
      const catalog = await make();
      await catalog.createRestore(restoreInput('r', '2026-11-23T09:00:00.000Z'));

      await catalog.recordRestoreStep('r', 'Complete', { endedAt: '2026-11-23T09:12:34.000Z', outcome: 'Succeeded' });

      expect((await catalog.getRestore('r'))!.steps.Complete).toEqual({ startedAt: '2026-11-23T09:12:34.000Z', endedAt: '2026-11-23T09:12:34.000Z', outcome: 'Succeeded' });
    });

    it('are listed newest first, optionally for one plan or one backup', async () => {
      const catalog = await make();
      await catalog.createRestore(restoreInput('old', '2026-11-21T09:00:00.000Z'));
      await catalog.createRestore(restoreInput('new', '2026-11-23T09:00:00.000Z', { backupId: 'b' }));
      await catalog.createRestore(restoreInput('other', '2026-11-22T09:00:00.000Z', { plan: 'q', backupId: 'c' }));

      expect((await catalog.listRestores()).map((r) => r.restoreId)).toEqual(['new', 'other', 'old']);
      expect((await catalog.listRestores({ plan: 'p' })).map((r) => r.restoreId)).toEqual(['new', 'old']);
      expect((await catalog.listRestores({ backupId: 'a' })).map((r) => r.restoreId)).toEqual(['old']);
      expect((await catalog.listRestores({ plan: 'q', backupId: 'a' })).map((r) => r.restoreId)).toEqual([]);
    });

    it('are kept apart from backups with the same id', async () => {
      const catalog = await make();
      await catalog.createBackup(backupInput('same', '2026-11-23T02:00:00.000Z'));
      await catalog.createRestore(restoreInput('same', '2026-11-23T09:00:00.000Z'));

      expect((await catalog.listBackups()).map((r) => r.backupId)).toEqual(['same']);
      expect((await catalog.listRestores()).map((r) => r.restoreId)).toEqual(['same']);
      expect(await catalog.getBackup('same')).toMatchObject({ startedAt: '2026-11-23T02:00:00.000Z' });
    });
  });
});

describe('LocalCatalog', () => {
  it('keeps records across instances on the same directory (another CLI process)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-catalog-'));
    dirs.push(dir);
    await new LocalCatalog(dir).createBackup(backupInput('a', '2026-11-23T02:00:00.000Z'));
    await new LocalCatalog(dir).acquireLock('p', holder(1), NOW, LATER);

    expect(await new LocalCatalog(dir).getBackup('a')).toMatchObject({ backupId: 'a' });
    await expect(new LocalCatalog(dir).acquireLock('p', holder(2), NOW, LATER)).rejects.toThrow(BackupInProgressError);
  });

  it('takes over the lock directory of a process that died holding it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mg-catalog-'));
    dirs.push(dir);
    await mkdir(join(dir, '.lock'));
    const longAgo = new Date(Date.now() - 3_600_000);
    await utimes(join(dir, '.lock'), longAgo, longAgo);

    await new LocalCatalog(dir).createBackup(backupInput('a', '2026-11-23T02:00:00.000Z'));

    expect(await new LocalCatalog(dir).getBackup('a')).toMatchObject({ backupId: 'a' });
    expect(await readdir(dir)).toEqual([expect.stringMatching(/\.json$/)]);
  });
});

describe('causeText', () => {
  it('takes the message out of the JSON cause a Lambda error has in Step Functions', () => {
    expect(causeText(JSON.stringify({ errorType: 'SnapshotFailed', errorMessage: 'VolumeSnapshot x failed', trace: ['at ...'] }))).toBe('VolumeSnapshot x failed');
  });

  it('keeps a plain-text cause as it is', () => {
    expect(causeText('States.Timeout: the task timed out')).toBe('States.Timeout: the task timed out');
  });
});

import { beforeEach, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyObjects, type ObjectCopyAccess, type RenewPause } from '../../core/backup/objects.js';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { directoryCopyBackend, type CopyBackend } from '../../core/objectstore/bucket-copy.js';
import type { GcPause, ObjectCopyProgress } from '../../core/workflow/backup-state.js';
import type { PreparedBackup } from '../../core/workflow/contracts.js';

// CopyObjects as the workflow calls it, on directory buckets with an injected clock: a call stops
// at its time budget and hands back its cursor, the GC pause is renewed before its lease ends (and
// recorded, for a recovery), and a call that dies half way through a page is redone with the
// cursor it was given and completes the same copy.

const T0 = Date.parse('2026-12-01T02:00:00.000Z');
const BUCKET = { bucket: 'acme-milvus', rootPath: 'files', declaredBy: 'milvus-cr' as const };
const BACKUP: PreparedBackup = {
  plan: 'milvus-production-backup',
  backupName: 'copy-1',
  namespace: 'vector-db',
  cluster: { name: 'prod', eksClusterName: 'prod', region: 'us-east-1' },
  vault: { name: 'primary', bucket: 'vault', region: 'us-east-1' },
  executionId: 'exec-1',
  startedAt: new Date(T0).toISOString(),
};

let root: string;
let now: number;
let catalog: InMemoryCatalog;

/** A backend whose listings take `secondsPerPage` of the injected clock, and whose `failAt`-th copy into the vault dies. */
function timedBackend(inner: CopyBackend, secondsPerPage: number, failAt?: number): CopyBackend {
  let copies = 0;
  return Object.assign(Object.create(inner) as CopyBackend, {
    listSource: async (...args: Parameters<CopyBackend['listSource']>) => {
      now += secondsPerPage * 1000;
      return inner.listSource(...args);
    },
    copyToVault: async (...args: Parameters<CopyBackend['copyToVault']>) => {
      if (++copies === failAt) throw new Error('the Lambda died');
      return inner.copyToVault(...args);
    },
  });
}

function services(vault: string, secondsPerPage: number, failAt?: number): { catalog: InMemoryCatalog; now: () => Date; objectCopy: ObjectCopyAccess } {
  const backend = timedBackend(directoryCopyBackend({ bucketsDir: join(root, 'buckets'), vaultDir: join(root, vault) }), secondsPerPage, failAt);
  return { catalog, now: () => new Date(now), objectCopy: { backend: () => backend, callSeconds: 60, pageSize: 10 } };
}

const noRenewal: RenewPause = {
  pause: async () => {
    throw new Error('no renewal expected');
  },
  release: async () => undefined,
};

/** Calls CopyObjects until done, as the workflow's loop does; counts the calls. */
async function copyAll(s: ReturnType<typeof services>, gc: GcPause, renew: RenewPause = noRenewal): Promise<{ last: ObjectCopyProgress; calls: number }> {
  let state: ObjectCopyProgress = { done: false };
  let calls = 0;
  while (!state.done) {
    calls += 1;
    state = await copyObjects(s, BACKUP, BUCKET, state, gc, renew);
  }
  return { last: state, calls };
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'mg-copy-objects-'));
  now = T0;
  catalog = new InMemoryCatalog();
  await catalog.createBackup({ backupId: BACKUP.backupName, plan: BACKUP.plan, cluster: 'prod', namespace: 'vector-db', vault: 'primary', executionId: 'exec-1', status: 'InProgress', startedAt: BACKUP.startedAt, steps: {} });
  for (let i = 0; i < 30; i++) {
    const dir = join(root, 'buckets', BUCKET.bucket, BUCKET.rootPath, 'insert_log', String(i % 3));
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `segment-${String(i).padStart(2, '0')}`), `binlog ${i} `.repeat(100 + i));
  }
});

const longPause: GcPause = { ticket: 't-1', pausedUntil: new Date(T0 + 3600_000).toISOString() };

describe('CopyObjects', () => {
  it('stops at the call budget with its cursor and finishes on later calls, recording the commit', async () => {
    // 20 s per page of 10 keys, 60 s per call: a third page would not fit after two, so two
    // pages a call, three pages in all.
    const { last, calls } = await copyAll(services('vault', 20), longPause);

    expect(calls).toBe(2);
    expect(last.copy).toMatchObject({ source: { bucket: BUCKET.bucket, rootPath: BUCKET.rootPath }, objects: 30, copied: 30, pages: 3 });
    expect((await catalog.getBackup(BACKUP.backupName))?.objectCopy).toEqual(last.copy);
    expect(last.gc).toEqual(longPause);
  });

  it('renews the GC pause before its lease ends, records the new pause and hands it on', async () => {
    // The lease ends 10 minutes after the start: within a call (60 s) plus 5 minutes of it after the first page.
    const pause: GcPause = { ticket: 't-1', pausedUntil: new Date(T0 + 7 * 60_000).toISOString() };
    const events: string[] = [];
    const renew: RenewPause = {
      pause: async () => {
        events.push('pause');
        return { ticket: 't-2', pausedUntil: new Date(now + 45 * 60_000).toISOString() };
      },
      // The new pause is in the record before the old ticket is resumed: a recovery after a crash in between resumes a live one.
      release: async (old) => void events.push(`release ${old.ticket} (recorded ${(await catalog.getBackup(BACKUP.backupName))?.gcPause?.ticket})`),
    };

    const { last } = await copyAll(services('vault', 40), pause, renew);

    expect(events).toEqual(['pause', 'release t-1 (recorded t-2)']);
    expect(last.gc?.ticket).toBe('t-2');
    expect((await catalog.getBackup(BACKUP.backupName))?.gcPause?.ticket).toBe('t-2');
  });

  it('fails with GcPauseLapsed, copying nothing, when the pause ended before the copy could renew it', async () => {
    const lapsed: GcPause = { ticket: 't-1', pausedUntil: new Date(T0 - 1000).toISOString() };

    await expect(copyObjects(services('vault', 40), BACKUP, BUCKET, { done: false }, lapsed, noRenewal)).rejects.toMatchObject({ name: 'GcPauseLapsed' });
    expect((await catalog.getBackup(BACKUP.backupName))?.objectCopy).toBeUndefined();
  });

  it('completes the same copy when a call dies half way through a page and is redone with its cursor', async () => {
    const clean = await copyAll(services('clean-vault', 1), longPause);
    catalog = new InMemoryCatalog();
    await catalog.createBackup({ backupId: BACKUP.backupName, plan: BACKUP.plan, cluster: 'prod', namespace: 'vector-db', vault: 'primary', executionId: 'exec-1', status: 'InProgress', startedAt: BACKUP.startedAt, steps: {} });

    const s = services('vault', 1, 15);
    let state: ObjectCopyProgress = { done: false };
    await expect(copyObjects(s, BACKUP, BUCKET, state, longPause, noRenewal)).rejects.toThrow('the Lambda died');
    // The workflow's Retry sends the same request again: the same (absent) cursor.
    while (!state.done) state = await copyObjects(s, BACKUP, BUCKET, state, longPause, noRenewal);

    expect(state.copy).toMatchObject({ objects: clean.last.copy!.objects, bytes: clean.last.copy!.bytes, pages: 3 });
    // The objects the dead call copied were found in the vault, not copied again.
    expect(state.copy!.copied).toBeLessThan(30);
    expect(state.cursor!.totals.reused).toBe(30 - state.copy!.copied);
  });
});

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { backupVolume } from '../../core/datamover/backup.js';
import type { GcProgress, RetentionRun } from '../../core/retention/contracts.js';
import { collectGarbageStep, type RetentionTimings } from '../../core/retention/workflow.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { backupProgressKey, packKey, volumeIndexKey, volumeSummaryKey } from '../../core/vault/layout.js';
import type { PutOptions } from '../../core/vault/store.js';
import { backupInput } from '../backup/catalog-helpers.js';
import { SMALL_CHUNKS, tempDir } from '../datamover/helpers.js';
import { packKeys, packsOf } from './helpers.js';

// Garbage collection's minimum age: the plan locks keep the workflow's own backups out of a run,
// but not a writer that holds no lock (`milvus-guard datamover backup` by hand, an export Job
// still in its termination grace period after its backup was recovered). Such a writer's packs
// are referenced by no summary until its last write, so a run in between would take them for
// garbage. No pack younger than the minimum age is deleted.

const PLAN = 'milvus-production-backup';
const T0 = new Date('2031-01-05T02:00:00.000Z');
const HOUR = 3_600_000;
let now = T0;
let catalog: InMemoryCatalog;

/** A vault that runs `beforeSummary` once, just before the named summary is written: a run that lands between a writer's packs and its summary. */
class SummaryGate extends InMemoryVaultStore {
  beforeSummary?: { key: string; run: () => Promise<void> };

  override async put(key: string, body: Uint8Array, options?: PutOptions): Promise<void> {
    const gate = this.beforeSummary;
    if (gate && key === gate.key) {
      this.beforeSummary = undefined;
      await gate.run();
    }
    return super.put(key, body, options);
  }
}

let vault: SummaryGate;

beforeEach(() => {
  now = T0;
  vault = new SummaryGate('memory://vault', { now: () => now });
  catalog = new InMemoryCatalog();
});

const run = (at: Date): RetentionRun => ({ runId: 'r', executionId: 'e', now: at.toISOString(), dryRun: false, vault: 'primary', plans: [PLAN], locked: [PLAN], skipped: [], collectGarbage: true });

async function collectAll(at: Date, timings: Partial<RetentionTimings> = {}): Promise<GcProgress> {
  let gc: GcProgress | undefined;
  do gc = await collectGarbageStep({ vault, catalog, now: () => now, retention: { lockTtlSeconds: 60, gcSlicePrefixes: 64, keepSnapshots: 1, ...timings } }, run(at), gc);
  while (gc.next !== undefined);
  return gc;
}

/** A data-mover backup of one volume with `files`, as `milvus-guard datamover backup` makes it (no lock, no catalog record). */
async function exportVolume(id: string, files: Record<string, Buffer>, withProgress = false): Promise<void> {
  const dir = await tempDir('mg-min-age-');
  await mkdir(join(dir, 'data'), { recursive: true });
  for (const [name, body] of Object.entries(files)) await writeFile(join(dir, 'data', name), body);
  try {
    await backupVolume({ source: dir, vault, volume: 'minio', backupId: id, now, chunker: SMALL_CHUNKS, packSize: 32 * 1024, workers: 1, ...(withProgress ? { progress: { now: () => now, log: () => undefined } } : {}) });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('garbage collection minimum age', () => {
  it('deletes none of the packs of a writer that holds no lock when a run lands between its packs and its summary, so its backup stays whole', async () => {
    let during: GcProgress | undefined;
    vault.beforeSummary = { key: volumeSummaryKey('by-hand', 'minio'), run: async () => void (during = await collectAll(new Date(now.getTime() + HOUR))) };

    await exportVolume('by-hand', { 'segment.bin': randomBytes(200_000) });

    const packs = await packsOf(vault, 'by-hand');
    expect(packs.size).toBeGreaterThan(1);
    expect(during).toMatchObject({ packsDeleted: 0, packsYoung: packs.size, packsScanned: packs.size, errors: [] });
    // Everything the completed backup's index references is in the vault.
    const missing = [];
    for (const key of packs) if (!(await vault.head(key))) missing.push(key);
    expect(missing).toEqual([]);
  });

  it('keeps an unreferenced pack until it is older than the minimum age; a later run deletes it', async () => {
    // An export that never wrote its summary or index (its Job was killed): garbage once it is old.
    await exportVolume('killed', { 'segment.bin': randomBytes(100_000) });
    await vault.delete(volumeSummaryKey('killed', 'minio'));
    await vault.delete(volumeIndexKey('killed', 'minio'));
    const left = await packKeys(vault);
    expect(left.length).toBeGreaterThan(0);

    const early = await collectAll(new Date(T0.getTime() + 23 * HOUR));
    expect(early).toMatchObject({ packsDeleted: 0, packsYoung: left.length });
    expect(await packKeys(vault)).toEqual(left);

    const later = await collectAll(new Date(T0.getTime() + 24 * HOUR));
    expect(later).toMatchObject({ packsDeleted: left.length, packsYoung: 0 });
    expect(await packKeys(vault)).toEqual([]);
  });

  it('takes its age from the retention timings (0 turns the guard off)', async () => {
    const key = packKey('cd'.repeat(16));
    await vault.put(key, Buffer.from('pack'));

    expect(await collectAll(new Date(T0.getTime() + 2 * HOUR), { gcMinAgeSeconds: 3 * 3600 })).toMatchObject({ packsDeleted: 0, packsYoung: 1 });
    expect(await collectAll(new Date(T0.getTime() + 2 * HOUR), { gcMinAgeSeconds: 3600 })).toMatchObject({ packsDeleted: 1, packsYoung: 0 });
    await vault.put(key, Buffer.from('pack'));
    expect(await collectAll(T0, { gcMinAgeSeconds: 0 })).toMatchObject({ packsDeleted: 1, packsYoung: 0 });
  });

  it('counts a pack written after the run\'s clock, or whose write time the vault does not tell, as young', async () => {
    const ahead = packKey('ee'.repeat(16));
    now = new Date(T0.getTime() + 48 * HOUR);
    await vault.put(ahead, Buffer.from('written on a clock ahead of the run'));
    const unknown = packKey('ef'.repeat(16));
    vault.objects.set(unknown, { body: Buffer.from('no write time') });

    const gc = await collectAll(new Date(T0.getTime() + 24 * HOUR));

    expect(gc).toMatchObject({ packsDeleted: 0, packsYoung: 2 });
    expect(await packKeys(vault)).toEqual([ahead, unknown].sort());
  });

  it('stops at the slice it is in while an export writes progress that has not ended, and collects once it has', async () => {
    // The old backup's packs are garbage: nothing references them any more.
    await exportVolume('expired', { 'segment.bin': randomBytes(100_000) });
    await vault.delete(volumeSummaryKey('expired', 'minio'));
    const garbage = await packKeys(vault);
    now = new Date(T0.getTime() + 48 * HOUR);
    let during: GcProgress | undefined;
    vault.beforeSummary = { key: volumeSummaryKey('running', 'minio'), run: async () => void (during = await collectAll(now)) };

    await exportVolume('running', { 'segment.bin': randomBytes(100_000) }, true);
    const after = await collectAll(now);

    expect(during).toMatchObject({ packsScanned: 0, packsDeleted: 0 });
    expect(during!.next).toBeUndefined();
    expect(during!.skipped).toBe(
      'from prefix 00 on: the export of volume minio of backup running has not reported an end (its last report is of 2031-01-07T02:00:00.000Z), so it may still be writing and reuse any pack; ' +
        'an export silent for 24 hours counts as ended (15 minutes once the catalog records its Job deleted). The next run collects the rest',
    );
    // Ended (phase done): the old packs go, the new backup's stay.
    expect(after.skipped).toBeUndefined();
    expect(after.packsDeleted).toBe(garbage.length);
    expect(await packKeys(vault)).toEqual([...(await packsOf(vault, 'running'))].sort());
  });

  /** The report a killed export leaves: phase copying, never ended. */
  const killedExport = (backupId: string) =>
    vault.put(backupProgressKey(backupId, 'minio'), Buffer.from(JSON.stringify({ format: 'milvus-guard/progress', kind: 'export', volume: 'minio', backupId, phase: 'copying', startedAt: T0.toISOString(), updatedAt: T0.toISOString(), filesDone: 1, filesTotal: 2, bytesDone: 1, bytesTotal: 2, bytesPerSecond: null, etaSeconds: null })));

  it('takes an export whose progress stopped more than the minimum age before the run for dead (one run by hand: no record)', async () => {
    await killedExport('by-hand');
    const key = packKey('cd'.repeat(16));
    await vault.put(key, Buffer.from('pack'));

    expect(await collectAll(new Date(T0.getTime() + 23 * HOUR))).toMatchObject({ packsDeleted: 0, skipped: expect.stringContaining('backup by-hand has not reported an end (its last report is of 2031-01-05T02:00:00.000Z)') });
    expect(await collectAll(new Date(T0.getTime() + 24 * HOUR))).toMatchObject({ packsDeleted: 1 });
  });

  it('takes the silent export of a backup whose Jobs the catalog records removed for gone after 15 minutes, not a day', async () => {
    await killedExport('recovered');
    await catalog.createBackup({ ...backupInput('recovered', T0.toISOString()), status: 'Failed', exportsRemovedAt: T0.toISOString() });
    await catalog.createBackup({ ...backupInput('still-running', T0.toISOString()), status: 'InProgress' });

    expect(await collectAll(new Date(T0.getTime() + 10 * 60_000))).toMatchObject({ skipped: expect.stringContaining('backup recovered has not reported an end') });
    expect((await collectAll(new Date(T0.getTime() + 16 * 60_000))).skipped).toBeUndefined();
    // One whose backup the catalog still has InProgress (its Job may run on) is waited for.
    await killedExport('still-running');
    expect(await collectAll(new Date(T0.getTime() + 16 * 60_000))).toMatchObject({ skipped: expect.stringContaining('backup still-running has not reported an end') });
  });

  it('waits the minimum age for the export of a backup that failed while its Jobs could not be removed (its cluster did not answer)', async () => {
    await killedExport('unreachable');
    await catalog.createBackup({ ...backupInput('unreachable', T0.toISOString()), status: 'Failed' });

    expect(await collectAll(new Date(T0.getTime() + 16 * 60_000))).toMatchObject({ skipped: expect.stringContaining('backup unreachable has not reported an end') });
    expect((await collectAll(new Date(T0.getTime() + 24 * HOUR))).skipped).toBeUndefined();
  });

  it('removes, once every prefix is done, the temporary files killed writers left in a file vault, once they are as old as the minimum age', async () => {
    const root = await tempDir('mg-interrupted-');
    const files = new FileVaultStore(root, { now: () => now });
    await files.put(packKey('ab'.repeat(16)), Buffer.from('a pack, referenced by nothing'));
    // What a Job killed between writing a pack's temporary file and renaming it leaves.
    const stale = join(root, 'data', 'packs', 'ab', `${'ac'.repeat(16)}.pack.tmp-0123456789ab`);
    const fresh = join(root, 'data', 'packs', 'ab', `${'ad'.repeat(16)}.pack.tmp-0123456789ac`);
    await writeFile(stale, Buffer.alloc(1000));
    await writeFile(fresh, Buffer.alloc(500));
    const at = new Date(Date.now() + 25 * HOUR);
    await utimes(stale, new Date(Date.now() - HOUR), new Date(Date.now() - HOUR));
    await utimes(fresh, new Date(at.getTime() - HOUR), new Date(at.getTime() - HOUR));

    let gc: GcProgress | undefined;
    const calls: (string | undefined)[] = [];
    do {
      gc = await collectGarbageStep({ vault: files, catalog, now: () => at, retention: { lockTtlSeconds: 60, gcSlicePrefixes: 64, keepSnapshots: 1 } }, run(at), gc);
      calls.push(gc.interruptedWritesRemoved === undefined ? undefined : String(gc.interruptedWritesRemoved));
    } while (gc.next !== undefined);

    expect(calls).toEqual([undefined, undefined, undefined, '1']);
    expect(gc).toMatchObject({ packsDeleted: 1, interruptedWritesRemoved: 1, bytesFreed: 'a pack, referenced by nothing'.length + 1000 });
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
  });
});

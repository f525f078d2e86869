import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { backupVolume } from '../../core/datamover/backup.js';
import { archiveRestoreOf, checkThaw, packsOfBackup, startThaw, ThawTimeoutError } from '../../core/restore/thaw.js';
import { BackupIntegrityError, verifyBackupIndex } from '../../core/restore/verify.js';
import { backupRecordKey, packKey, PACKS_PREFIX, volumeIndexKey, volumeSummaryKey } from '../../core/vault/layout.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import type { ThawProgress } from '../../core/workflow/restore-state.js';
import { buildTree, dropIndexLines, Rng, SMALL_CHUNKS, tempDir, writeBackupRecord } from '../datamover/helpers.js';

// The restore's thaw (core/restore/thaw.ts) against a backup the real data mover wrote into the
// in-memory vault, some of whose packs a "lifecycle" moved into archive classes. Time is the
// vault's injected clock, moved by the tests.

const BACKUP = 'nightly-20261123020000';
const VOLUME = 'export-milvus-minio-0';
const T0 = new Date('2026-12-05T10:00:00.000Z');
const HOUR = 3600;
const STANDARD = { tier: 'Standard', days: 3 } as const;

let objects: InMemoryVaultStore['objects'];
let packIds: string[];

beforeAll(async () => {
  const dir = await tempDir('thaw');
  await mkdir(dir, { recursive: true });
  await buildTree(join(dir, 'minio'), 'minio');
  await writeFile(join(dir, 'minio', 'big.bin'), new Rng('big').bytes(200_000));
  const vault = new InMemoryVaultStore('memory://vault');
  await backupVolume({ source: join(dir, 'minio'), vault, volume: VOLUME, backupId: BACKUP, now: T0, chunker: SMALL_CHUNKS, packSize: 16 * 1024, workers: 1 });
  await writeBackupRecord(vault, BACKUP, [VOLUME]);
  objects = vault.objects;
  packIds = [...objects.keys()].filter((k) => k.startsWith(PACKS_PREFIX)).map((k) => k.slice(k.lastIndexOf('/') + 1).replace(/\.pack$/, '')).sort();
});

class Clock {
  constructor(public at: Date) {}
  readonly now = (): Date => this.at;
  advance(seconds: number): void {
    this.at = new Date(this.at.getTime() + seconds * 1000);
  }
}

/** A copy of the backup's vault with a clock, thaws taking `thawSeconds`, and `archived` packs in `storageClass`. */
function vaultWith(archived: readonly string[], storageClass = 'GLACIER', thawSeconds = 4 * HOUR) {
  const clock = new Clock(T0);
  const vault = new InMemoryVaultStore('memory://vault', { now: clock.now, thawSeconds });
  for (const [key, o] of objects) vault.objects.set(key, { ...o, body: Buffer.from(o.body) });
  for (const id of archived) vault.transition(packKey(id), storageClass);
  return { vault, clock };
}

/** Counts the vault calls a step makes. */
function counting(vault: InMemoryVaultStore) {
  const calls = { head: 0, thaw: 0 };
  const head = vault.head.bind(vault);
  const thaw = vault.thaw.bind(vault);
  vault.head = (key) => (calls.head++, head(key));
  vault.thaw = (key, options) => (calls.thaw++, thaw(key, options));
  return calls;
}

const vaultRestore = { backupId: BACKUP, source: 'vault' as const };

describe('packsOfBackup', () => {
  it('lists every pack the backup references once, in id order', async () => {
    const { vault } = vaultWith([]);

    expect(await packsOfBackup(vault, BACKUP)).toEqual(packIds);
    expect(packIds.length).toBeGreaterThan(5);
  });

  // A document written since VerifyBackup must not choose which packs are thawed (and paid for).
  it("reads backup.json as the record anchors it, and refuses a summary or an index written since", async () => {
    const { vault } = vaultWith([]);
    const record = await vault.get(backupRecordKey(BACKUP));
    const anchored = createHash('sha256').update(record).digest('hex');

    await expect(packsOfBackup(vault, BACKUP, anchored)).resolves.toEqual(packIds);
    await expect(packsOfBackup(vault, BACKUP, createHash('sha256').update('another').digest('hex'))).rejects.toThrow(`${backupRecordKey(BACKUP)} is not the document the backup wrote`);

    const summaryKey = volumeSummaryKey(BACKUP, VOLUME);
    const summary = vault.objects.get(summaryKey)!;
    vault.objects.set(summaryKey, { ...summary, body: Buffer.from(summary.body.toString().replace('"files"', '"files" ')) });
    await expect(packsOfBackup(vault, BACKUP, anchored)).rejects.toThrow(BackupIntegrityError);
    await expect(packsOfBackup(vault, BACKUP, anchored)).rejects.toThrow(`${summaryKey} was altered`);
    // One that no longer even reads as this volume backup's summary is altered all the same.
    vault.objects.set(summaryKey, { ...summary, body: Buffer.from(summary.body.toString().replace('index.jsonl.gz', 'other.jsonl.gz')) });
    await expect(packsOfBackup(vault, BACKUP, anchored)).rejects.toThrow(new RegExp(`^backup ${BACKUP} failed its integrity check, nothing was restored: ${summaryKey} was altered`));
    vault.objects.set(summaryKey, summary);

    await dropIndexLines(vault, volumeIndexKey(BACKUP, VOLUME), 1);
    await expect(packsOfBackup(vault, BACKUP, anchored)).rejects.toThrow(`${volumeIndexKey(BACKUP, VOLUME)} was altered`);
  });

  it('is read by StartThaw and CheckThaw with the hash the restore holds', async () => {
    const { vault } = vaultWith(packIds.slice(0, 2));
    const other = { ...vaultRestore, indexSha256: createHash('sha256').update('another').digest('hex') };
    const progress: ThawProgress = { done: false, pending: [], beyond: 1, scannedTo: packIds[1]!, frozen: 3, deadline: new Date(T0.getTime() + HOUR * 1000).toISOString() };

    await expect(startThaw(vault, other, {}, STANDARD, T0, 48 * HOUR)).rejects.toThrow('is not the document the backup wrote');
    await expect(checkThaw(vault, other, progress, STANDARD, T0)).rejects.toThrow('is not the document the backup wrote');
  });
});

describe('verifyBackupIndex and archived packs', () => {
  it('counts the packs in an archive class without a readable copy, from the heads it makes anyway', async () => {
    const { vault } = vaultWith(packIds.slice(0, 3));
    vault.transition(packKey(packIds[3]!), 'GLACIER_IR');

    expect((await verifyBackupIndex(vault, BACKUP)).archived).toBe(3);
  });
});

describe('startThaw', () => {
  it('asks for nothing when the volumes come from snapshots', async () => {
    const { vault } = vaultWith(packIds);
    const calls = counting(vault);

    const step = await startThaw(vault, { ...vaultRestore, source: 'snapshot' }, {}, STANDARD, T0, 48 * HOUR);

    expect(step).toEqual({ progress: { done: true, pending: [], beyond: 0, frozen: 0 }, detail: 'nothing to thaw: the volumes come from snapshots' });
    expect(calls).toEqual({ head: 0, thaw: 0 });
  });

  it('makes no request when the verification counted no archived pack', async () => {
    const { vault } = vaultWith([]);
    const calls = counting(vault);

    const step = await startThaw(vault, vaultRestore, { archived: 0 }, STANDARD, T0, 48 * HOUR);

    expect(step.progress.done).toBe(true);
    expect(calls).toEqual({ head: 0, thaw: 0 });
  });

  it('heads every pack but thaws nothing when the verification did not count (an older execution) and none is archived', async () => {
    const { vault } = vaultWith([]);
    const calls = counting(vault);

    const step = await startThaw(vault, vaultRestore, {}, STANDARD, T0, 48 * HOUR);

    expect(step.progress.done).toBe(true);
    expect(calls).toEqual({ head: packIds.length, thaw: 0 });
  });

  it('thaws exactly the archived packs and returns them pending, with the deadline and a detail for the timeline', async () => {
    const archived = [packIds[1]!, packIds[4]!];
    const { vault } = vaultWith(archived);
    const calls = counting(vault);

    const step = await startThaw(vault, vaultRestore, { archived: 2 }, STANDARD, T0, 48 * HOUR);

    expect(step.progress).toEqual({ done: false, pending: archived, beyond: 0, frozen: 2, deadline: '2026-12-07T10:00:00.000Z' });
    expect(step.detail).toBe('2 packs in GLACIER thawing (Standard, ~3-5 h)');
    expect(calls.thaw).toBe(2);
    for (const id of archived) expect((await vault.head(packKey(id)))?.restore).toEqual({ ongoing: true });
  });

  it('thaws DEEP_ARCHIVE packs with Standard when Expedited is configured, and says so', async () => {
    const { vault } = vaultWith([packIds[0]!], 'DEEP_ARCHIVE');

    const step = await startThaw(vault, vaultRestore, {}, { tier: 'Expedited', days: 3 }, T0, 48 * HOUR);

    expect(step.detail).toBe('1 pack in DEEP_ARCHIVE thawing (Standard, ~12 h; Expedited is not offered for DEEP_ARCHIVE)');
    expect((await vault.head(packKey(packIds[0]!)))?.restore).toEqual({ ongoing: true });
  });

  it('does not ask again for a pack whose thaw runs already (a retried Task)', async () => {
    const { vault } = vaultWith([packIds[0]!]);
    await vault.thaw(packKey(packIds[0]!), STANDARD);
    const calls = counting(vault);

    const step = await startThaw(vault, vaultRestore, {}, STANDARD, T0, 48 * HOUR);

    expect(step.progress.pending).toEqual([packIds[0]]);
    expect(calls.thaw).toBe(0);
  });
});

describe('checkThaw', () => {
  it('keeps the packs still thawing, then is done once their copies are readable', async () => {
    const archived = packIds.slice(0, 3);
    const { vault, clock } = vaultWith(archived);
    const started = (await startThaw(vault, vaultRestore, {}, STANDARD, T0, 48 * HOUR)).progress;
    clock.advance(HOUR);

    const early = await checkThaw(vault, vaultRestore, started, STANDARD, clock.now());
    expect(early.progress).toEqual(started);
    expect(early.detail).toBe('3 of 3 pack(s) still thawing');

    clock.advance(3 * HOUR);
    const done = await checkThaw(vault, vaultRestore, early.progress, STANDARD, clock.now());

    expect(done.progress).toMatchObject({ done: true, pending: [], beyond: 0 });
    expect(done.detail).toBe('3 pack(s) thawed from an archive class');
    for (const id of archived) expect((await vault.getRange(packKey(id), 0, 1)).length).toBe(1);
  });

  it('fails with ThawTimeout naming how many packs are still frozen once the deadline has passed', async () => {
    const { vault, clock } = vaultWith(packIds.slice(0, 3), 'DEEP_ARCHIVE', 60 * HOUR);
    const started = (await startThaw(vault, vaultRestore, {}, STANDARD, T0, 48 * HOUR)).progress;
    clock.advance(48 * HOUR);

    const check = checkThaw(vault, vaultRestore, started, STANDARD, clock.now());

    await expect(check).rejects.toThrow(ThawTimeoutError);
    await expect(check).rejects.toThrow(`3 pack(s) of backup ${BACKUP} were still frozen in an archive class at the thaw deadline 2026-12-07T10:00:00.000Z`);
  });

  it('asks again for a pack whose thaw was lost or whose copy expired, and waits for it', async () => {
    const { vault, clock } = vaultWith([packIds[0]!], 'GLACIER', 0);
    const started: ThawProgress = { done: false, pending: [packIds[0]!], beyond: 0, frozen: 1, deadline: '2026-12-30T00:00:00.000Z' };
    const calls = counting(vault);

    const step = await checkThaw(vault, vaultRestore, started, STANDARD, clock.now());

    expect(calls.thaw).toBe(1);
    expect(step.progress).toMatchObject({ done: false, pending: [packIds[0]] });
    expect((await checkThaw(vault, vaultRestore, step.progress, STANDARD, clock.now())).progress.done).toBe(true);
  });

  it('keeps at most a window of pending ids in the state and re-derives the rest from the indexes', async () => {
    const archived = packIds.slice(0, 5);
    const { vault, clock } = vaultWith(archived);

    const started = (await startThaw(vault, vaultRestore, {}, STANDARD, T0, 48 * HOUR, 2)).progress;
    expect(started).toMatchObject({ pending: archived.slice(0, 2), beyond: 3, scannedTo: archived[1], frozen: 5 });
    // Every archived pack was asked for at once, not a window at a time.
    for (const id of archived) expect((await vault.head(packKey(id)))?.restore).toEqual({ ongoing: true });

    clock.advance(4 * HOUR);
    vault.transition(packKey(archived[4]!), 'GLACIER'); // its copy is gone again: it must be asked for anew
    const next = (await checkThaw(vault, vaultRestore, started, STANDARD, clock.now(), 2)).progress;

    expect(next).toMatchObject({ done: false, pending: [archived[4]], beyond: 0, frozen: 5 });
    expect(next).not.toHaveProperty('scannedTo');
    clock.advance(4 * HOUR);
    expect((await checkThaw(vault, vaultRestore, next, STANDARD, clock.now(), 2)).progress.done).toBe(true);
  });
});

describe('archiveRestoreOf', () => {
  it("takes the vault's archiveRestore, else Standard for 3 days", () => {
    const vaults = [{ name: 'primary', archiveRestore: { tier: 'Bulk' as const, days: 5 } }, { name: 'dr' }] as never;

    expect(archiveRestoreOf({ vaults }, 'primary')).toEqual({ tier: 'Bulk', days: 5 });
    expect(archiveRestoreOf({ vaults }, 'dr')).toEqual({ tier: 'Standard', days: 3 });
  });
});

import { chmod, mkdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { backupVolume, EarlierAttemptUnusableError, ForeignExportObjectError } from '../../core/datamover/backup.js';
import { IndexReader } from '../../core/datamover/index-format.js';
import { restoreVolume } from '../../core/datamover/restore.js';
import { readVolumeSummary, readVolumeSummaryHashed, type VolumeSummary } from '../../core/datamover/summary.js';
import { commitsToSummary } from '../../core/vault/backup-index.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { backupRecordKey, volumeIndexKey, volumeSummaryKey } from '../../core/vault/layout.js';
import { buildTree, Rng, runDatamoverCli, SMALL_CHUNKS, snapshotTree, tempDir, writeBackupRecord } from './helpers.js';

// The export data mover's role may create summaries, indexes and packs (never write over one).
// Someone holding it can therefore put a whole backup into the vault under an id no backup used:
// one that looks older than the next backup, so that it is taken as the parent, or the id of a
// backup yet to run, so that its Job finds "its" summary and finishes from it. Neither may end in
// a backup that restores bytes the volume never held.

const T1 = new Date('2031-03-01T02:00:00.000Z');
const T2 = new Date('2031-03-01T03:00:00.000Z');
const T3 = new Date('2031-03-02T02:00:00.000Z');
const VICTIM = 'victim.bin';
const VICTIM_MTIME = new Date('2030-01-01T00:00:00.000Z');
const VOLUME = 'etcd';

/** A volume with one file whose size and mtime a forger can read from an index and match. */
async function setUp() {
  const source = await tempDir('planted-src');
  await buildTree(join(source, 'data'));
  await writeFile(join(source, VICTIM), new Rng('genuine').bytes(64 * 1024));
  await utimes(join(source, VICTIM), VICTIM_MTIME, VICTIM_MTIME);
  const root = await tempDir('planted-vault');
  const vault = new FileVaultStore(root, { now: () => T3 });
  return { source, root, vault };
}

/** A directory holding only a file of the victim's path, size and mtime, with other bytes. */
async function forgedVolume(): Promise<string> {
  const dir = await tempDir('planted-forged');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, VICTIM), new Rng('forged').bytes(64 * 1024));
  await utimes(join(dir, VICTIM), VICTIM_MTIME, VICTIM_MTIME);
  return dir;
}

describe('a backup planted under an unused id, newer than the last finalized one', () => {
  it('is passed over as the parent when the backup takes only committed parents, and the restore holds the volume', async () => {
    const { source, vault } = await setUp();
    await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: T1, chunker: SMALL_CHUNKS, workers: 1 });
    await writeBackupRecord(vault, 'b1', [VOLUME]);
    await backupVolume({ source: await forgedVolume(), vault, volume: VOLUME, backupId: 'b2', now: T2, full: true, chunker: SMALL_CHUNKS, workers: 1 });

    const result = await backupVolume({ source, vault, volume: VOLUME, backupId: 'b3', now: T3, committedParent: true, chunker: SMALL_CHUNKS, workers: 1 });

    expect(result.parentBackupId).toBe('b1');
    expect(result.filesUnchanged).toBeGreaterThan(0);
    const target = await tempDir('planted-restore');
    await restoreVolume({ vault, volume: VOLUME, backupId: 'b3', target, workers: 1 });
    expect(await snapshotTree(target)).toEqual(await snapshotTree(source));
  });

  it('hands its bytes to the next backup that takes any summary as its parent: why the workflow does not', async () => {
    const { source, vault } = await setUp();
    await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: T1, chunker: SMALL_CHUNKS, workers: 1 });
    await writeBackupRecord(vault, 'b1', [VOLUME]);
    await backupVolume({ source: await forgedVolume(), vault, volume: VOLUME, backupId: 'b2', now: T2, full: true, chunker: SMALL_CHUNKS, workers: 1 });

    const result = await backupVolume({ source, vault, volume: VOLUME, backupId: 'b3', now: T3, chunker: SMALL_CHUNKS, workers: 1 });

    expect(result.parentBackupId).toBe('b2');
    const target = await tempDir('planted-restore-any');
    await restoreVolume({ vault, volume: VOLUME, backupId: 'b3', target, workers: 1 });
    expect(await readFile(join(target, VICTIM))).not.toEqual(await readFile(join(source, VICTIM)));
  });

  it('is passed over, not fatal, when it says it is of another backup than its key', async () => {
    const { source, vault } = await setUp();
    await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: T1, chunker: SMALL_CHUNKS, workers: 1 });
    await writeBackupRecord(vault, 'b1', [VOLUME]);
    const genuine = JSON.parse((await vault.get(volumeSummaryKey('b1', VOLUME))).toString()) as VolumeSummary;
    const planted = { ...genuine, createdAt: T2.toISOString() };
    // Its own index is where b2's would be (a copy of b1's), so only what it says of itself is wrong.
    await vault.put(volumeIndexKey('b2', VOLUME), await vault.get(volumeIndexKey('b1', VOLUME)));
    await vault.put(volumeSummaryKey('b2', VOLUME), Buffer.from(JSON.stringify({ ...planted, backupId: '../b1', indexKey: volumeIndexKey('b2', VOLUME) })));

    // In either mode: the summary is refused as not b2's before anything asks whether it is committed.
    const result = await backupVolume({ source, vault, volume: VOLUME, backupId: 'b3', now: T3, chunker: SMALL_CHUNKS, workers: 1 });

    expect(result.parentBackupId).toBe('b1');
  });

  it('reads every file when no earlier backup is committed', async () => {
    const { source, vault } = await setUp();
    await backupVolume({ source: await forgedVolume(), vault, volume: VOLUME, backupId: 'b2', now: T2, full: true, chunker: SMALL_CHUNKS, workers: 1 });

    const result = await backupVolume({ source, vault, volume: VOLUME, backupId: 'b3', now: T3, committedParent: true, chunker: SMALL_CHUNKS, workers: 1 });

    expect(result).toMatchObject({ parentBackupId: null, filesUnchanged: 0 });
  });
});

describe('commitsToSummary', () => {
  async function committed() {
    const { source, vault } = await setUp();
    await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: T1, chunker: SMALL_CHUNKS, workers: 1 });
    const document = await writeBackupRecord(vault, 'b1', [VOLUME]);
    const { sha256 } = await readVolumeSummaryHashed(vault, 'b1', VOLUME);
    return { vault, document, sha256 };
  }
  const rewrite = (vault: FileVaultStore, document: object) => vault.put(backupRecordKey('b1'), Buffer.from(JSON.stringify(document)));

  it('holds for the summary backup.json commits to', async () => {
    const { vault, sha256 } = await committed();

    expect(await commitsToSummary(vault, 'b1', VOLUME, sha256)).toBe(true);
  });

  it.each([
    ['other bytes of the summary', async (vault: FileVaultStore) => [vault, 'b1', VOLUME, '0'.repeat(64)] as const],
    ['another volume', async (vault: FileVaultStore) => [vault, 'b1', 'minio', undefined] as const],
    ['a backup without backup.json', async (vault: FileVaultStore) => [vault, 'b9', VOLUME, undefined] as const],
  ])('fails for %s', async (_name, args) => {
    const { vault, sha256 } = await committed();
    const [v, backupId, volume, digest] = await args(vault);

    expect(await commitsToSummary(v, backupId, volume, digest ?? sha256)).toBe(false);
  });

  it('holds for a backup.json written before the integrity chain, which lists the volume without a digest', async () => {
    const { vault, document, sha256 } = await committed();
    await rewrite(vault, { ...document, volumes: document.volumes.map((v) => ({ ...v, summarySha256: undefined })) });

    expect(await commitsToSummary(vault, 'b1', VOLUME, sha256)).toBe(true);
    expect(await commitsToSummary(vault, 'b1', 'minio', sha256)).toBe(false);
  });

  it.each([
    ["of another backup (copied)", (d: object) => ({ ...d, backupId: 'b0' })],
    ['not a backup index', () => ({ hello: 'world' })],
  ])('fails for a backup.json %s', async (_name, change) => {
    const { vault, document, sha256 } = await committed();
    await rewrite(vault, change(document as never));

    expect(await commitsToSummary(vault, 'b1', VOLUME, sha256)).toBe(false);
  });

  it('fails for a backup.json that is not JSON', async () => {
    const { vault, sha256 } = await committed();
    await vault.put(backupRecordKey('b1'), Buffer.from('{"format":'));

    expect(await commitsToSummary(vault, 'b1', VOLUME, sha256)).toBe(false);
  });
});

describe('objects planted under the id of a backup yet to run', () => {
  const LOCK_PLANTED = new Date('2031-03-05T02:00:00.000Z');
  const LOCK_BACKUP = new Date('2031-04-01T02:00:00.000Z');
  const run = (source: string, vault: FileVaultStore, runId: string | undefined, retainUntil = LOCK_BACKUP) =>
    backupVolume({ source, vault, volume: VOLUME, backupId: 'nightly-7', now: T1, retainUntil, chunker: SMALL_CHUNKS, workers: 1, ...(runId ? { runId } : {}) });

  it('writes its run id into the index header and the summary', async () => {
    const { source, vault } = await setUp();

    await run(source, vault, 'job-uid-1');

    expect((await readVolumeSummary(vault, 'nightly-7', VOLUME)).runId).toBe('job-uid-1');
    const reader = new IndexReader(await vault.openRead(volumeIndexKey('nightly-7', VOLUME)), 'index');
    expect((await reader.readHeader()).runId).toBe('job-uid-1');
    await reader.close();
  });

  it.each([
    ['names no run', undefined],
    ['names another run', 'forger'],
  ])('refuses a summary that %s, instead of finishing from it', async (_name, plantedRun) => {
    const { source, vault } = await setUp();
    await run(await forgedVolume(), vault, plantedRun, LOCK_PLANTED);

    const refused = await run(source, vault, 'job-uid-1').catch((err: unknown) => err);

    expect(refused).toBeInstanceOf(ForeignExportObjectError);
    expect((refused as Error).message).toContain(`${volumeSummaryKey('nightly-7', VOLUME)} in the vault was not written by this export run (${plantedRun ? 'it names run "forger"' : 'it names no run'}, this run is "job-uid-1")`);
  });

  it('refuses an index another run left without a summary, before it extends a lock of the packs it names', async () => {
    const { source, root, vault } = await setUp();
    await run(await forgedVolume(), vault, 'forger', LOCK_PLANTED);
    await rm(join(root, volumeSummaryKey('nightly-7', VOLUME)));
    const packs = [];
    for await (const o of vault.list('data/packs/')) packs.push(o.key);

    const refused = await run(source, vault, 'job-uid-1').catch((err: unknown) => err);

    expect(refused).toBeInstanceOf(ForeignExportObjectError);
    expect((refused as Error).message).toContain(`${volumeIndexKey('nightly-7', VOLUME)} in the vault was not written by this export run`);
    expect(packs.length).toBeGreaterThan(0);
    for (const key of [...packs, volumeIndexKey('nightly-7', VOLUME)]) expect((await vault.head(key))?.retainUntil).toEqual(LOCK_PLANTED);
    expect(await vault.head(volumeSummaryKey('nightly-7', VOLUME))).toBeUndefined();
  });

  it('refuses an index another run left before reading past its header, even when the rest is damaged', async () => {
    const { source, root, vault } = await setUp();
    await run(await forgedVolume(), vault, 'forger', LOCK_PLANTED);
    await rm(join(root, volumeSummaryKey('nightly-7', VOLUME)));
    const index = join(root, volumeIndexKey('nightly-7', VOLUME));
    await chmod(index, 0o644);
    await truncate(index, (await stat(index)).size - 16);

    await expect(run(source, vault, 'job-uid-1')).rejects.toThrow(ForeignExportObjectError);
  });

  it("refuses a summary with this run's id that names an index other than the backup's own", async () => {
    const { source, root, vault } = await setUp();
    await run(await forgedVolume(), vault, undefined, LOCK_PLANTED);
    // The run id is no secret: the role may read the index it heads. A summary carrying it,
    // written between the index and the summary, names an index created under another id.
    const other = await backupVolume({ source: await forgedVolume(), vault, volume: VOLUME, backupId: 'unused-id', now: T1, full: true, chunker: SMALL_CHUNKS, workers: 1 });
    const forged = { ...(await readVolumeSummary(vault, 'unused-id', VOLUME)), backupId: 'nightly-7', runId: 'job-uid-1', indexKey: other.indexKey };
    await rm(join(root, volumeSummaryKey('nightly-7', VOLUME)), { force: true });
    await vault.put(volumeSummaryKey('nightly-7', VOLUME), Buffer.from(JSON.stringify(forged)));

    const refused = await run(source, vault, 'job-uid-1').catch((err: unknown) => err);

    expect(refused).toBeInstanceOf(EarlierAttemptUnusableError);
    expect((refused as Error).message).toContain(`with the index "${other.indexKey}", where that volume backup's index is ${volumeIndexKey('nightly-7', VOLUME)}`);
  });

  // Written between this run's index and its summary, with the run id read from the index
  // header: the Job's own summary write then meets it, fails, and the retry comes here.
  it.each<[string, (s: VolumeSummary) => object, string]>([
    ['commits to other index bytes', (s) => ({ ...s, index: { ...s.index!, sha256: '0'.repeat(64) } }), `its SHA-256 is`],
    ['counts other files than its index holds', (s) => ({ ...s, stats: { ...s.stats, files: s.stats.files + 1 } }), 'regular files where its index holds'],
    ['commits to no index', (s) => ({ ...s, index: undefined }), 'commits to no index, as every summary of a run does'],
  ])("refuses a summary with this run's id that %s", async (_name, forge, words) => {
    const { source, root, vault } = await setUp();
    await run(source, vault, 'job-uid-1');
    const genuine = await readVolumeSummary(vault, 'nightly-7', VOLUME);
    await rm(join(root, volumeSummaryKey('nightly-7', VOLUME)));
    await vault.put(volumeSummaryKey('nightly-7', VOLUME), Buffer.from(JSON.stringify(forge(genuine))));

    const refused = await run(source, vault, 'job-uid-1').catch((err: unknown) => err);

    expect(refused).toBeInstanceOf(EarlierAttemptUnusableError);
    expect((refused as Error).message).toContain(words);
  });

  it('finishes from what an earlier attempt of the same run left', async () => {
    const { source, root, vault } = await setUp();
    await run(source, vault, 'job-uid-1');
    await rm(join(root, volumeSummaryKey('nightly-7', VOLUME)));

    const again = await run(source, vault, 'job-uid-1');

    expect(again.resumed).toBe('index');
    expect((await readVolumeSummary(vault, 'nightly-7', VOLUME)).runId).toBe('job-uid-1');
    expect((await run(source, vault, 'job-uid-1')).resumed).toBe('summary');
  });

  it('says so in one line from the CLI, exit 1', async () => {
    const { source, root } = await setUp();
    const planted = await runDatamoverCli(['backup', '--source', await forgedVolume(), '--vault', `file://${root}`, '--volume', VOLUME, '--backup-id', 'nightly-7']);

    const refused = await runDatamoverCli(['backup', '--source', source, '--vault', `file://${root}`, '--volume', VOLUME, '--backup-id', 'nightly-7', '--run-id', '4b0a6f1e-0c1d-4e8e-9a57-5d7f3c2b1a00']);

    expect(planted.code).toBe(0);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n').at(-1)).toMatch(/^error: backup nightly-7 of volume etcd cannot be finished: .* was not written by this export run \(it names no run, this run is "4b0a6f1e-0c1d-4e8e-9a57-5d7f3c2b1a00"\)/);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
  });

  it.each([
    ['a reference the kubelet could not expand', '$(MILVUS_GUARD_RUN_ID)'],
    ['an empty label', ''],
  ])('refuses as --run-id %s, naming the flag', async (_name, id) => {
    const { source, root } = await setUp();

    const refused = await runDatamoverCli(['backup', '--source', source, '--vault', `file://${root}`, '--volume', VOLUME, '--backup-id', 'nightly-7', '--run-id', id]);

    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: --run-id: .* is not a run id; .*batch\.kubernetes\.io\/controller-uid/m);
  });
});

import { createHash } from 'node:crypto';
import { watch } from 'node:fs';
import { access, mkdir, readdir, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { constants as zlibConstants, gunzipSync, gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { backupVolume } from '../../core/datamover/backup.js';
import { IndexCorruptError, IndexReadError } from '../../core/datamover/index-format.js';
import { RESTORE_MARKER, RestoreError, RestoreIncompleteError, restoreVolume } from '../../core/datamover/restore.js';
import { SummaryCorruptError, type VolumeSummary } from '../../core/datamover/summary.js';
import { VaultNotRecognisedError, verifyVault, type VerifyProblem } from '../../core/datamover/verify.js';
import { ExportIncompleteError, gatherCommitments } from '../../core/vault/backup-index.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { backupRecordKey, failedMarkerKey, inventoryKey, manifestKey, packKey, volumeIndexKey, volumeSummaryKey } from '../../core/vault/layout.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { ObjectArchivedError, ObjectChecksumMismatchError, VaultReadInterruptedError } from '../../core/vault/store.js';
import { IndexReader } from '../../core/datamover/index-format.js';
import { BackupIntegrityError, verifyBackupIndex } from '../../core/restore/verify.js';
import { finalizeStep } from '../../core/backup/workflow.js';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { buildTree, cutReadsShort, dropIndexLines, SMALL_CHUNKS, tempDir, writeBackupRecord } from './helpers.js';

// The integrity chain over a backup as the workflow leaves it: two volumes exported by the
// real data mover, an inventory, captured manifests and backup.json written as Finalize does.

const BACKUP = 'nightly-20261123020000';
const ETCD = 'data-milvus-etcd-0';
const MINIO = 'export-milvus-minio-0';
const NOW = new Date('2026-11-23T02:00:00Z');
const SERVICE = manifestKey(BACKUP, { group: 'core', kind: 'Service', namespace: 'vector-db', name: 'milvus' });
const CONFIG = manifestKey(BACKUP, { group: 'core', kind: 'ConfigMap', namespace: 'vector-db', name: 'milvus-config' });

let base: InMemoryVaultStore;
let source: string;

beforeAll(async () => {
  const dir = await tempDir('chain');
  source = join(dir, 'minio');
  await buildTree(source, 'minio');
  await mkdir(join(dir, 'etcd', 'member'), { recursive: true });
  await writeFile(join(dir, 'etcd', 'member', 'db'), 'etcd data');
  base = new InMemoryVaultStore('memory://vault');
  await base.put(inventoryKey(BACKUP), Buffer.from('{"resources":[]}'));
  await base.put(SERVICE, Buffer.from('apiVersion: v1\nkind: Service\nmetadata:\n  name: milvus\n'));
  await base.put(CONFIG, Buffer.from('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: milvus-config\ndata:\n  a: b\n'));
  for (const [volume, from] of [
    [ETCD, join(dir, 'etcd')],
    [MINIO, source],
  ] as const) {
    await backupVolume({ source: from, vault: base, volume, backupId: BACKUP, now: NOW, chunker: SMALL_CHUNKS, packSize: 32 * 1024, workers: 1 });
  }
  await writeBackupRecord(base, BACKUP, [ETCD, MINIO]);
});

/** A copy of the vault that a test may damage without touching the others'. */
function copyOf(vault: InMemoryVaultStore): InMemoryVaultStore {
  const copy = new InMemoryVaultStore(vault.url);
  for (const [key, o] of vault.objects) copy.objects.set(key, { ...o, body: Buffer.from(o.body) });
  return copy;
}

const kinds = (problems: readonly VerifyProblem[]): string[] => problems.map((p) => `${p.kind} ${p.path}`);

describe('verify walks the integrity chain', () => {
  it('passes an intact backup in the structural mode without reading chunk data', async () => {
    const vault = copyOf(base);
    vault.getRange = async () => {
      throw new Error('structural mode must not read chunks');
    };

    const result = await verifyVault({ vault });

    expect(result.problems).toEqual([]);
    expect(result).toMatchObject({ mode: 'structural', backups: 1, volumeBackups: 2, files: 16 });
    expect(result.packs).toBeGreaterThan(1);
  });

  it('passes an intact backup when it reads and hashes every chunk', async () => {
    const result = await verifyVault({ vault: copyOf(base), readData: true });

    expect(result.problems).toEqual([]);
    expect(result.mode).toBe('read-data');
    expect(result.bytesVerified).toBeGreaterThan(200_000);
  });

  it('reports an index with whole lines removed (still valid gzip) as not matching its summary', async () => {
    const vault = copyOf(base);
    await dropIndexLines(vault, volumeIndexKey(BACKUP, MINIO), 3);

    const { problems } = await verifyVault({ vault });

    expect(kinds(problems)).toEqual([`index ${volumeIndexKey(BACKUP, MINIO)}`]);
    expect(problems[0]!.problem).toContain('it holds 12 regular files where the summary commits to 15 (3 missing)');
    expect(problems[0]!.problem).toContain('its SHA-256 is');
  });

  it('reports a deleted volume summary that backup.json lists', async () => {
    const vault = copyOf(base);
    vault.objects.delete(volumeSummaryKey(BACKUP, ETCD));

    const { problems } = await verifyVault({ vault });

    expect(kinds(problems)).toEqual([`summary ${volumeSummaryKey(BACKUP, ETCD)}`]);
    expect(problems[0]).toMatchObject({ backupId: BACKUP, volume: ETCD, problem: expect.stringContaining('is missing') });
  });

  it('reports a deleted summary of a backup without backup.json by the index it leaves behind', async () => {
    const vault = copyOf(base);
    vault.objects.delete(backupRecordKey(BACKUP));
    vault.objects.delete(inventoryKey(BACKUP));
    vault.objects.delete(volumeSummaryKey(BACKUP, MINIO));

    const { problems } = await verifyVault({ vault });

    expect(kinds(problems)).toEqual([`summary ${volumeSummaryKey(BACKUP, MINIO)}`]);
    expect(problems[0]!.problem).toContain('has an index but no summary');
  });

  it('reports an altered summary by its digest', async () => {
    const vault = copyOf(base);
    const key = volumeSummaryKey(BACKUP, ETCD);
    const summary = JSON.parse((await vault.get(key)).toString()) as VolumeSummary;
    await vault.put(key, Buffer.from(JSON.stringify({ ...summary, stats: { ...summary.stats, files: 99 } })));

    const { problems } = await verifyVault({ vault });

    expect(kinds(problems)).toContain(`summary ${key}`);
    expect(problems.find((p) => p.path === key)!.problem).toMatch(/was altered: its SHA-256 is [0-9a-f]{64} where backup.json commits to [0-9a-f]{64}/);
  });

  it('lists a workflow backup whose backup.json is missing as unfinished, apart from the breaks', async () => {
    // Running, dead, or its backup.json deleted: the vault alone cannot tell which.
    const vault = copyOf(base);
    vault.objects.delete(backupRecordKey(BACKUP));

    const { problems, unfinished } = await verifyVault({ vault });

    expect(problems).toEqual([]);
    expect(unfinished).toEqual([{ backupId: BACKUP, path: backupRecordKey(BACKUP) }]);
  });

  it('does not flag a running backup: an export with an index but no summary yet is not a break', async () => {
    // Mid-Export: one volume done, the other's index written and its summary not yet.
    const vault = copyOf(base);
    vault.objects.delete(backupRecordKey(BACKUP));
    vault.objects.delete(volumeSummaryKey(BACKUP, MINIO));

    const result = await verifyVault({ vault });

    expect(result.problems).toEqual([]);
    expect(result.unfinished).toEqual([{ backupId: BACKUP, path: backupRecordKey(BACKUP) }]);
    expect(result.volumeBackups).toBe(1); // the finished volume is still checked
  });

  it('lists no unfinished backup when every workflow backup has backup.json', async () => {
    expect((await verifyVault({ vault: copyOf(base) })).unfinished).toEqual([]);
  });

  it('passes what a failed backup left unfinished (no backup.json, an index without summary) once its failure is marked', async () => {
    const vault = copyOf(base);
    vault.objects.delete(backupRecordKey(BACKUP));
    vault.objects.delete(volumeSummaryKey(BACKUP, MINIO));
    expect((await verifyVault({ vault: copyOf(vault) })).unfinished).toHaveLength(1);
    await vault.put(failedMarkerKey(BACKUP), Buffer.from(JSON.stringify({ backupId: BACKUP, error: 'ExportFailed' })));

    const { problems, unfinished } = await verifyVault({ vault });

    expect(problems).toEqual([]);
    expect(unfinished).toEqual([]);
  });

  it('reports a flipped byte in a captured manifest', async () => {
    const vault = copyOf(base);
    vault.objects.get(SERVICE)!.body[10]! ^= 0x01;

    const { problems } = await verifyVault({ vault });

    expect(kinds(problems)).toEqual([`manifest ${SERVICE}`]);
    expect(problems[0]!.problem).toContain('was altered');
  });

  it('reports a deleted manifest and one added after the backup', async () => {
    const vault = copyOf(base);
    vault.objects.delete(CONFIG);
    const added = manifestKey(BACKUP, { group: 'core', kind: 'Secret', namespace: 'vector-db', name: 'planted' });
    await vault.put(added, Buffer.from('kind: Secret'));

    const { problems } = await verifyVault({ vault });

    expect(kinds(problems).sort()).toEqual([`manifest ${CONFIG}`, `manifest ${added}`].sort());
  });

  it('reports a missing pack once, naming the files that need it, without reading data', async () => {
    const vault = copyOf(base);
    const reader = new IndexReader(await vault.openRead(volumeIndexKey(BACKUP, ETCD)), 'test');
    let pack = '';
    for await (const e of reader.entries()) if (e.chunks?.[0]) pack = packKey(e.chunks[0].pack);
    vault.objects.delete(pack);

    const { problems } = await verifyVault({ vault });

    expect(kinds(problems)).toEqual([`pack ${pack}`]);
    expect(problems[0]!.problem).toContain(`is missing (needed by ${BACKUP}/${ETCD}:member/db`);
  });

  it('reports a backup written before the chain as unverifiable, not as verified', async () => {
    const vault = copyOf(base);
    const key = volumeSummaryKey(BACKUP, ETCD);
    const { index: _, ...legacy } = JSON.parse((await vault.get(key)).toString()) as VolumeSummary;
    await vault.put(key, Buffer.from(JSON.stringify(legacy)));
    const record = JSON.parse((await vault.get(backupRecordKey(BACKUP))).toString()) as { volumes: { summarySha256?: string }[]; manifests?: unknown };
    for (const v of record.volumes) delete v.summarySha256;
    delete record.manifests;
    await vault.put(backupRecordKey(BACKUP), Buffer.from(JSON.stringify(record)));

    const { problems } = await verifyVault({ vault });

    expect(problems.every((p) => p.kind === 'unverifiable')).toBe(true);
    expect(kinds(problems).sort()).toEqual([`unverifiable ${backupRecordKey(BACKUP)}`, `unverifiable ${backupRecordKey(BACKUP)}`, `unverifiable ${backupRecordKey(BACKUP)}`, `unverifiable ${key}`].sort());
  });

  it('refuses a vault directory that does not exist', async () => {
    const vault = new FileVaultStore(join(await tempDir('chain-none'), 'no-such-vault'));

    await expect(verifyVault({ vault })).rejects.toThrow(VaultNotRecognisedError);
    await expect(verifyVault({ vault })).rejects.toThrow(/does not exist or holds no milvus-guard backup/);
  });

  it('refuses a directory that holds nothing it recognises', async () => {
    const root = await tempDir('chain-other');
    await writeFile(join(root, 'notes.txt'), 'not a vault');

    await expect(verifyVault({ vault: new FileVaultStore(root) })).rejects.toThrow(VaultNotRecognisedError);
  });
});

describe('restore checks the chain', () => {
  it('refuses an index with lines removed before it creates anything', async () => {
    const vault = copyOf(base);
    await dropIndexLines(vault, volumeIndexKey(BACKUP, MINIO), 3);
    const target = join(await tempDir('chain-restore'), 'target');

    const error = await restoreVolume({ vault, volume: MINIO, backupId: BACKUP, target, workers: 0 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(IndexCorruptError);
    expect((error as Error).message).toContain('does not match the volume summary: it holds');
    expect((error as Error).message).toContain('(3 missing)');
    await expect(access(target)).rejects.toThrow(/ENOENT/);
  });

  it('refuses a summary other than the one backup.json commits to, before it creates anything, and restores the committed one', async () => {
    // A summary written after the backup, over an index and packs of its own, is consistent in
    // itself: only backup.json's commitment (which the workflow passes) tells it apart.
    const vault = copyOf(base);
    const committed = (JSON.parse((await vault.get(backupRecordKey(BACKUP))).toString()) as { volumes: { pvc: string; summarySha256: string }[] }).volumes.find((v) => v.pvc === ETCD)!.summarySha256;
    const other = createHash('sha256').update('another summary').digest('hex');
    const target = join(await tempDir('chain-restore'), 'target');

    const error = await restoreVolume({ vault, volume: ETCD, backupId: BACKUP, target, workers: 0, summarySha256: other }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(SummaryCorruptError);
    expect((error as Error).message).toBe(`${volumeSummaryKey(BACKUP, ETCD)} in ${vault.url} is not the summary backup ${BACKUP} commits to: its SHA-256 is ${committed}, backup.json commits to ${other} (it was written after the backup); restore from another backup`);
    await expect(access(target)).rejects.toThrow(/ENOENT/);
    await expect(restoreVolume({ vault, volume: ETCD, backupId: BACKUP, target, workers: 0, summarySha256: committed })).resolves.toMatchObject({ files: 1 });
  });

  it('fails after hydration, naming the difference, when the index lost files its summary records', async () => {
    // A summary without commitments (written before the chain) cannot catch it up front.
    const vault = copyOf(base);
    const key = volumeSummaryKey(BACKUP, MINIO);
    const { index: _, ...legacy } = JSON.parse((await vault.get(key)).toString()) as VolumeSummary;
    await vault.put(key, Buffer.from(JSON.stringify(legacy)));
    await dropIndexLines(vault, volumeIndexKey(BACKUP, MINIO), 2);
    const target = join(await tempDir('chain-hydrate'), 'target');

    const error = await restoreVolume({ vault, volume: MINIO, backupId: BACKUP, target, workers: 0 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RestoreIncompleteError);
    expect((error as Error).name).toBe('RestoreIncomplete');
    expect((error as Error).message).toMatch(/restored 13 files \(\d+ bytes\) of backup .* but its summary records 15 files \(\d+ bytes\): 2 file\(s\) and \d+ bytes are missing/);
    expect(await readdir(target)).toContain(RESTORE_MARKER); // not complete: a re-run is not "done"
  });

  it.each([
    ['bytesTotal', 'a renamed key', (stats: Record<string, unknown>) => ({ ...stats, bytesTotal: undefined, bytesTotam: stats['bytesTotal'] }), 'missing'],
    ['files', 'a negative count', (stats: Record<string, unknown>) => ({ ...stats, files: -2 }), '-2'],
    ['files', 'a count as a string', (stats: Record<string, unknown>) => ({ ...stats, files: '15' }), '"15"'],
  ])('refuses a summary whose stats.%s is %s, naming the field, before it creates anything', async (field, _what, alter, shown) => {
    const vault = copyOf(base);
    const key = volumeSummaryKey(BACKUP, MINIO);
    const summary = JSON.parse((await vault.get(key)).toString()) as VolumeSummary;
    await vault.put(key, Buffer.from(JSON.stringify({ ...summary, stats: alter(summary.stats as unknown as Record<string, unknown>) })));
    const target = join(await tempDir('chain-stats'), 'target');

    const error = await restoreVolume({ vault, volume: MINIO, backupId: BACKUP, target, workers: 0 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(SummaryCorruptError);
    expect((error as Error).message).toContain(`${key} in memory://vault is not a valid volume summary: stats.${field} is ${shown}, where a non-negative integer belongs`);
    expect((error as Error).message).not.toContain('undefined');
    await expect(access(target)).rejects.toThrow(/ENOENT/);
  });

  /** The index object becomes `next` once its first read has begun (a file vault's object rewritten). */
  const swapIndexAfterFirstRead = (vault: InMemoryVaultStore, key: string, next: Buffer): void => {
    const openRead = vault.openRead.bind(vault);
    let reads = 0;
    vault.openRead = async (k: string) => {
      const stream = await openRead(k);
      if (k === key && ++reads === 1) await vault.put(key, next);
      return stream;
    };
  };

  it('fails, leaving the marker, when the index is replaced after its check passed', async () => {
    const vault = copyOf(base);
    const key = volumeIndexKey(BACKUP, MINIO);
    const damaged = copyOf(base);
    await dropIndexLines(damaged, key, 2);
    swapIndexAfterFirstRead(vault, key, await damaged.get(key));
    const target = join(await tempDir('chain-swapped'), 'target');

    const error = await restoreVolume({ vault, volume: MINIO, backupId: BACKUP, target, workers: 0 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(IndexCorruptError);
    expect((error as Error).message).toContain('it changed after it was checked: it holds 51 entries');
    expect((error as Error).message).toContain('it holds 13 regular files where the summary commits to 15 (2 missing)');
    expect(await readdir(target)).toContain(RESTORE_MARKER);
  });

  it('refuses an index that did not match, even if a second read of it does, before it creates anything', async () => {
    const vault = copyOf(base);
    const key = volumeIndexKey(BACKUP, MINIO);
    const intact = await vault.get(key);
    await dropIndexLines(vault, key, 1);
    swapIndexAfterFirstRead(vault, key, intact);
    const target = join(await tempDir('chain-changing'), 'target');

    const error = await restoreVolume({ vault, volume: MINIO, backupId: BACKUP, target, workers: 0 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(RestoreError);
    expect((error as Error).message).toContain('a first read of it did not match the volume summary and a second did');
    expect((error as Error).message).toContain('nothing was created: run the restore again');
    await expect(access(target)).rejects.toThrow(/ENOENT/);
  });

  it('fails when the index is replaced after its check by one with the same entries but other bytes', async () => {
    // The same lines gzipped another way (Huffman coding only): every count matches, only the
    // SHA-256 and size tell.
    const vault = copyOf(base);
    const key = volumeIndexKey(BACKUP, MINIO);
    const intact = await vault.get(key);
    const regzipped = gzipSync(gunzipSync(intact), { strategy: zlibConstants.Z_HUFFMAN_ONLY });
    expect(regzipped.equals(intact)).toBe(false);
    swapIndexAfterFirstRead(vault, key, regzipped);
    const target = join(await tempDir('chain-regzipped'), 'target');

    const error = await restoreVolume({ vault, volume: MINIO, backupId: BACKUP, target, workers: 0 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(IndexCorruptError);
    expect((error as Error).message).toContain('it changed after it was checked: ');
    expect((error as Error).message).toContain('its SHA-256 is');
    expect((error as Error).message).not.toContain('entries');
    expect(await readdir(target)).toContain(RESTORE_MARKER);
  });

  it('fails, naming the summary, when the summary commits to the index bytes but to other counts', async () => {
    const vault = copyOf(base);
    const key = volumeSummaryKey(BACKUP, MINIO);
    const summary = JSON.parse((await vault.get(key)).toString()) as VolumeSummary & { index: { entries: number } };
    await vault.put(key, Buffer.from(JSON.stringify({ ...summary, index: { ...summary.index, entries: summary.index.entries + 1 } })));
    const target = join(await tempDir('chain-counts'), 'target');

    const error = await restoreVolume({ vault, volume: MINIO, backupId: BACKUP, target, workers: 0 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(SummaryCorruptError);
    expect((error as Error).message).toContain(`the summary of backup ${BACKUP} volume ${MINIO} commits to counts its index does not have: it holds 53 entries where the summary commits to 54 (1 missing); the restore is not complete and its marker stays`);
    expect(await readdir(target)).toContain(RESTORE_MARKER);
  });

  it('refuses an index of a version it cannot read before it creates anything, though its bytes are the committed ones', async () => {
    const vault = copyOf(base);
    const key = volumeIndexKey(BACKUP, MINIO);
    const lines = gunzipSync(await vault.get(key)).toString('utf8').split('\n');
    lines[0] = JSON.stringify({ ...(JSON.parse(lines[0]!) as object), version: 99 });
    const newer = gzipSync(lines.join('\n'));
    await vault.put(key, newer);
    const summaryKey = volumeSummaryKey(BACKUP, MINIO);
    const summary = JSON.parse((await vault.get(summaryKey)).toString()) as VolumeSummary;
    await vault.put(summaryKey, Buffer.from(JSON.stringify({ ...summary, index: { ...summary.index, sha256: createHash('sha256').update(newer).digest('hex'), size: newer.length } })));
    const target = join(await tempDir('chain-version'), 'target');

    const error = await restoreVolume({ vault, volume: MINIO, backupId: BACKUP, target, workers: 0 }).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(IndexCorruptError);
    expect((error as Error).message).toContain('index version 99 is not supported');
    await expect(access(target)).rejects.toThrow(/ENOENT/);
  });

  it('reads the index again when its first download is cut short, and says it could not be read, creating nothing, when every one is', async () => {
    const cutOnce = copyOf(base);
    const opens = cutReadsShort(cutOnce, volumeIndexKey(BACKUP, MINIO), { times: 1 });
    const vault = copyOf(base);
    cutReadsShort(vault, volumeIndexKey(BACKUP, MINIO));
    const target = join(await tempDir('chain-reset'), 'target');

    const restored = await restoreVolume({ vault: cutOnce, volume: MINIO, backupId: BACKUP, target: join(await tempDir('chain-reset-once'), 'target'), workers: 0 });
    const error = await restoreVolume({ vault, volume: MINIO, backupId: BACKUP, target, workers: 0 }).catch((e: unknown) => e);

    // The check read it twice (the first cut), the restore once more.
    expect([restored.files, opens()]).toEqual([15, 3]);
    // Raw bytes, nothing decoded yet: a failed read, to try again, not a damaged index.
    expect(error).toBeInstanceOf(IndexReadError);
    expect((error as Error).message).toBe(`index of backup ${BACKUP} volume ${MINIO}: reading it failed 3 times (read ECONNRESET); that is a failure of the read, not known damage to the index: try again`);
    await expect(access(target)).rejects.toThrow(/ENOENT/);
  });

  it('keeps its marker when the hydration read of the index is cut short, says to try again, and a re-run completes it', async () => {
    const vault = copyOf(base);
    // The check's read is whole; the second, the one the files are restored from, is cut short
    // once the restore has begun: its marker is in the (empty) target.
    const target = join(await tempDir('chain-cut'), 'target');
    await mkdir(target);
    const watcher = watch(target);
    const marked = new Promise<void>((resolve) => watcher.on('change', (_, name) => name === RESTORE_MARKER && resolve()));
    const opens = cutReadsShort(vault, volumeIndexKey(BACKUP, MINIO), { fromOpen: 2, until: marked });

    const error = await restoreVolume({ vault, volume: MINIO, backupId: BACKUP, target, workers: 0 })
      .catch((e: unknown) => e)
      .finally(() => watcher.close());

    // Nothing says the index is wrong: not "restore from another backup", which would send a
    // user off a good backup on the day the network is flaky.
    expect(opens()).toBe(2);
    expect(error).toBeInstanceOf(IndexReadError);
    expect((error as Error).message).toBe(`index of backup ${BACKUP} volume ${MINIO}: reading it failed (read ECONNRESET); that is a failure of the read, not known damage to the index: try again`);
    expect(await readdir(target)).toContain(RESTORE_MARKER);

    const again = await restoreVolume({ vault: copyOf(base), volume: MINIO, backupId: BACKUP, target, workers: 0 });

    // The marked target is taken up again (an unmarked one that is not empty is refused).
    expect(again.files).toBe(15);
    expect(await readdir(target)).not.toContain(RESTORE_MARKER);
  });

  it('gives no verdict, rather than report damage, when verify cannot read an index to its end', async () => {
    const vault = copyOf(base);
    cutReadsShort(vault, volumeIndexKey(BACKUP, MINIO));

    await expect(verifyVault({ vault })).rejects.toThrow(IndexReadError);
  });

  it('gives no verdict when a pack download is cut short every time or refused, and reports a pack whose bytes fail the store checksum as broken', async () => {
    // What the S3 vault throws after its three tries (core/vault/s3-store.ts getBytes).
    const cut = copyOf(base);
    cut.getRange = async (key: string) => {
      throw new VaultReadInterruptedError(cut.url, key, Object.assign(new Error('aborted'), { code: 'ECONNRESET' }), 3);
    };
    const mismatched = copyOf(base);
    mismatched.getRange = async (key: string) => {
      throw new ObjectChecksumMismatchError(mismatched.url, key, new Error('Checksum mismatch: expected "a" but received "b"'), 3);
    };

    const archived = copyOf(base);
    archived.getRange = async (key: string) => {
      throw new ObjectArchivedError(archived.url, key, 'DEEP_ARCHIVE');
    };
    const denied = copyOf(base);
    const accessDenied = Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    denied.getRange = async () => {
      throw accessDenied;
    };

    const interrupted = await verifyVault({ vault: cut, readData: true }).catch((e: unknown) => e);
    const refused = await verifyVault({ vault: denied, readData: true }).catch((e: unknown) => e);
    const broken = await verifyVault({ vault: mismatched, readData: true });
    const cold = await verifyVault({ vault: archived, readData: true });

    expect(interrupted).toBeInstanceOf(VaultReadInterruptedError);
    // A vault that refuses the read says nothing about the backup either.
    expect(refused).toBe(accessDenied);
    // An archived pack is no verdict on its files, but the rest is still verified and listed.
    expect(new Set(cold.problems.map((p) => p.kind))).toEqual(new Set(['unverifiable']));
    expect(cold.problems.length).toBeGreaterThan(1);
    expect(new Set(broken.problems.map((p) => p.kind))).toEqual(new Set(['chunk']));
    expect(broken.problems[0]!.problem).toMatch(/^object data\/packs\/\S+\.pack is damaged: it does not match the checksum the store keeps for it \(Checksum mismatch: expected "a" but received "b", 3 download\(s\)\)$/);
  });

  it.each([
    ['backup.json', () => backupRecordKey(BACKUP), 'backup'],
    ['a volume summary', () => volumeSummaryKey(BACKUP, MINIO), 'summary'],
    ['a captured manifest', () => SERVICE, 'manifest'],
  ])('reports %s whose bytes fail the store checksum on every download as damaged, and the restore refuses it as BackupCorrupt', async (_what, keyOf, kind) => {
    // What the S3 vault throws after its three tries of a whole-object read (core/vault/s3-store.ts getBytes).
    const key = keyOf();
    const vault = copyOf(base);
    const get = vault.get.bind(vault);
    vault.get = async (k: string) => {
      if (k === key) throw new ObjectChecksumMismatchError(vault.url, k, new Error('Checksum mismatch: expected "a" but received "b"'), 3);
      return get(k);
    };

    const verified = await verifyVault({ vault });
    const refused = await verifyBackupIndex(vault, BACKUP).catch((e: unknown) => e);

    const damaged = 'is damaged: it does not match the checksum the store keeps for it (Checksum mismatch: expected "a" but received "b", 3 download(s))';
    expect(verified.problems).toContainEqual(expect.objectContaining({ kind, path: key, problem: damaged }));
    expect(refused).toBeInstanceOf(BackupIntegrityError);
    expect((refused as BackupIntegrityError).breaks).toEqual([`${key} ${damaged}`]);
  });

  it('closes the index it opened when the target is refused (not empty)', async () => {
    const vault = copyOf(base);
    const key = volumeIndexKey(BACKUP, MINIO);
    const body = await vault.get(key);
    const opened: Readable[] = [];
    const openRead = vault.openRead.bind(vault);
    vault.openRead = async (k: string) => {
      if (k !== key) return openRead(k);
      // The check reads the index to its end; the hydration pass's read has not ended yet (a
      // large object still arriving), so only closing it ends it.
      let stream: Readable;
      if (opened.length === 0) stream = await openRead(k);
      else {
        stream = new Readable({ read() {} });
        stream.push(body);
      }
      opened.push(stream);
      return stream;
    };
    const target = join(await tempDir('chain-busy'), 'target');
    await mkdir(target);
    await writeFile(join(target, 'someone-elses-file'), 'x');

    await expect(restoreVolume({ vault, volume: MINIO, backupId: BACKUP, target, workers: 0 })).rejects.toThrow(/is not empty/);

    expect(opened).toHaveLength(2);
    expect(opened.every((stream) => stream.destroyed)).toBe(true);
  });

  it('restores an intact backup completely', async () => {
    const target = join(await tempDir('chain-ok'), 'target');

    const result = await restoreVolume({ vault: copyOf(base), volume: MINIO, backupId: BACKUP, target, workers: 0 });

    expect(result.files).toBe(15);
  });
});

describe('Finalize commits only a complete export', () => {
  it('gathers a digest of every summary and every manifest', async () => {
    const chain = await gatherCommitments(copyOf(base), BACKUP, [ETCD, MINIO], 2);

    expect([...chain.volumes.keys()]).toEqual([ETCD, MINIO]);
    expect(chain.manifests.map((m) => m.key).sort()).toEqual([CONFIG, SERVICE].sort());
  });

  it('refuses a volume without its summary, so the backup is never Available', async () => {
    const vault = copyOf(base);
    vault.objects.delete(volumeSummaryKey(BACKUP, MINIO));

    const error = await gatherCommitments(vault, BACKUP, [ETCD, MINIO]).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ExportIncompleteError);
    expect((error as Error).name).toBe('ExportIncomplete');
    expect((error as Error).message).toContain(`volume ${MINIO} has no summary (its export did not complete)`);
  });

  it('refuses a summary that commits to no index, and an index that is not the committed one', async () => {
    const vault = copyOf(base);
    const key = volumeSummaryKey(BACKUP, ETCD);
    const { index: _, ...legacy } = JSON.parse((await vault.get(key)).toString()) as VolumeSummary;
    await vault.put(key, Buffer.from(JSON.stringify(legacy)));
    await dropIndexLines(vault, volumeIndexKey(BACKUP, MINIO), 1);

    const error = await gatherCommitments(vault, BACKUP, [ETCD, MINIO]).catch((e: unknown) => e);

    expect((error as Error).message).toContain(`the summary of volume ${ETCD} commits to no index`);
    expect((error as Error).message).toMatch(new RegExp(`the index of volume ${MINIO} is \\d+ bytes where its summary commits to \\d+`));
  });

  it('refuses when fewer manifests are in the vault than Capture wrote', async () => {
    const vault = copyOf(base);
    vault.objects.delete(CONFIG);

    await expect(gatherCommitments(vault, BACKUP, [ETCD, MINIO], 2)).rejects.toThrow('Capture wrote 2 manifest(s) but the vault holds 1');
  });
});

describe('the Finalize step', () => {
  const backup = {
    plan: 'nightly',
    backupName: BACKUP,
    namespace: 'vector-db',
    cluster: { name: 'prod', eksClusterName: 'prod-eks', region: 'eu-west-1' },
    vault: { name: 'primary', bucket: 'vault', region: 'eu-west-1' },
    executionId: 'exec-1',
    startedAt: NOW.toISOString(),
  };
  const items = [ETCD, MINIO].map((pvc) => ({ pvc, role: 'minio', snapshot: `${BACKUP}-${pvc}` }));
  const exports = items.map((i) => ({ ...i, bytesTotal: 1, bytesUploaded: 1, files: 1 }));

  async function finalize(vault: InMemoryVaultStore): Promise<{ catalog: InMemoryCatalog; outcome: unknown }> {
    const catalog = new InMemoryCatalog();
    await catalog.createBackup({ backupId: BACKUP, plan: 'nightly', cluster: 'prod', namespace: 'vector-db', vault: 'primary', executionId: 'exec-1', status: 'InProgress', startedAt: NOW.toISOString(), steps: {} });
    const services = { catalog, vault, now: () => new Date('2026-11-23T02:10:00Z'), events: { publish: async () => {} } };
    const outcome = await finalizeStep(services, backup, { inventoryKey: inventoryKey(BACKUP), resources: 2, volumes: [] as never }, { items, ready: true, deadline: NOW.toISOString() }, exports).catch((e: unknown) => e);
    return { catalog, outcome };
  }

  /** A copy of the backup finalized anew, with the hash of backup.json its record holds. */
  async function finalized(): Promise<{ vault: InMemoryVaultStore; indexSha256: string }> {
    const vault = copyOf(base);
    vault.objects.delete(backupRecordKey(BACKUP));
    const { catalog } = await finalize(vault);
    return { vault, indexSha256: (await catalog.getBackup(BACKUP))!.indexSha256! };
  }

  it('commits to the inventory, which verify then reports altered or missing', async () => {
    const { vault } = await finalized();
    const document = JSON.parse((await vault.get(backupRecordKey(BACKUP))).toString()) as { inventorySha256?: string };

    expect(document.inventorySha256).toBe(createHash('sha256').update(await vault.get(inventoryKey(BACKUP))).digest('hex'));
    expect((await verifyVault({ vault })).problems).toEqual([]);
    vault.objects.get(inventoryKey(BACKUP))!.body = Buffer.from('{"resources":[],"volumes":[{"pvc":"x","capacity":"900Ti"}]}');
    expect((await verifyVault({ vault })).problems).toEqual([
      expect.objectContaining({ kind: 'inventory', path: inventoryKey(BACKUP), problem: expect.stringMatching(/^was altered: its SHA-256 is [0-9a-f]{64} where backup\.json commits to [0-9a-f]{64}$/) }),
    ]);
    vault.objects.delete(inventoryKey(BACKUP));
    expect((await verifyVault({ vault })).problems).toEqual([expect.objectContaining({ kind: 'inventory', problem: 'is missing' })]);
  });

  it('refuses a backup whose inventory is gone: ExportIncomplete, no backup.json', async () => {
    const vault = copyOf(base);
    vault.objects.delete(backupRecordKey(BACKUP));
    vault.objects.delete(inventoryKey(BACKUP));

    const { outcome } = await finalize(vault);

    expect(outcome).toMatchObject({ name: 'ExportIncomplete', message: expect.stringContaining(`its inventory ${inventoryKey(BACKUP)} is missing`) });
    expect(vault.objects.has(backupRecordKey(BACKUP))).toBe(false);
  });

  it('refuses a backup whose export did not complete: ExportIncomplete, no backup.json, never Available', async () => {
    const vault = copyOf(base);
    vault.objects.delete(backupRecordKey(BACKUP));
    vault.objects.delete(volumeSummaryKey(BACKUP, MINIO));

    const { catalog, outcome } = await finalize(vault);

    expect((outcome as Error).name).toBe('ExportIncomplete');
    expect(vault.objects.has(backupRecordKey(BACKUP))).toBe(false);
    expect((await catalog.getBackup(BACKUP))!.status).not.toBe('Available');
  });

  it('commits backup.json to each summary and manifest, so verify passes it', async () => {
    const vault = copyOf(base);
    vault.objects.delete(backupRecordKey(BACKUP));

    const { catalog, outcome } = await finalize(vault);

    expect(outcome).toMatchObject({ status: 'Available' });
    expect((await catalog.getBackup(BACKUP))!.status).toBe('Available');
    const document = JSON.parse((await vault.get(backupRecordKey(BACKUP))).toString()) as { volumes: { summarySha256?: string; files: number }[]; manifests: unknown[] };
    expect(document.volumes.map((v) => v.summarySha256)).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/), expect.stringMatching(/^[0-9a-f]{64}$/)]);
    expect(document.volumes[1]!.files).toBe(15); // from the summary, not from what the workflow state said
    expect(document.manifests).toHaveLength(2);
    expect((await verifyVault({ vault })).problems).toEqual([]);
  });

  it('records the SHA-256 of backup.json in the catalog, and the restore refuses a later version that is consistent in itself', async () => {
    // On a versioned bucket Object Lock protects each version, not the key: anyone allowed to
    // write the vault (a data mover's role) can add a version of backup.json. This one commits
    // to a manifest added beside the backup's, with the right hash: every other link checks.
    const vault = copyOf(base);
    vault.objects.delete(backupRecordKey(BACKUP));
    const { catalog } = await finalize(vault);
    const record = (await catalog.getBackup(BACKUP))!;
    const written = await vault.get(backupRecordKey(BACKUP));
    expect(record.indexSha256).toBe(createHash('sha256').update(written).digest('hex'));
    await expect(verifyBackupIndex(vault, BACKUP, { indexSha256: record.indexSha256! })).resolves.toMatchObject({ volumes: 2 });

    const added = manifestKey(BACKUP, { group: 'rbac.authorization.k8s.io', kind: 'ClusterRoleBinding', name: 'everyone-admin' });
    const manifest = Buffer.from('apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: everyone-admin\n');
    await vault.put(added, manifest);
    const document = JSON.parse(written.toString()) as { manifests: { key: string; sha256: string; size: number }[] };
    document.manifests.push({ key: added, sha256: createHash('sha256').update(manifest).digest('hex'), size: manifest.length });
    vault.objects.get(backupRecordKey(BACKUP))!.body = Buffer.from(JSON.stringify(document, null, 2));
    // Without the record's hash, the forged document passes every check the vault alone allows.
    await expect(verifyBackupIndex(vault, BACKUP)).resolves.toMatchObject({ volumes: 2 });

    const refused = await verifyBackupIndex(vault, BACKUP, { indexSha256: record.indexSha256! }).catch((e: unknown) => e);

    expect(refused).toBeInstanceOf(BackupIntegrityError);
    expect((refused as BackupIntegrityError).breaks).toEqual([
      expect.stringMatching(new RegExp(`^${backupRecordKey(BACKUP)} is not the document the backup wrote: its SHA-256 is [0-9a-f]{64}, the backup's record holds ${record.indexSha256} \\(written after the backup completed; on S3 the version Finalize wrote stays in the bucket, noncurrent, under its Object Lock\\)$`)),
    ]);
  });

  it('checks every commitment against the document it checked against the record, not a version written after that read', async () => {
    // A writer adds a version of backup.json (and the manifest it names) just after VerifyBackup
    // read the genuine one: the manifest must be judged by the genuine document.
    const { vault, indexSha256 } = await finalized();
    const added = manifestKey(BACKUP, { group: 'rbac.authorization.k8s.io', kind: 'ClusterRoleBinding', name: 'everyone-admin' });
    const manifest = Buffer.from('apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: everyone-admin\n');
    const document = JSON.parse((await vault.get(backupRecordKey(BACKUP))).toString()) as { manifests: { key: string; sha256: string; size: number }[] };
    document.manifests.push({ key: added, sha256: createHash('sha256').update(manifest).digest('hex'), size: manifest.length });
    const get = vault.get.bind(vault);
    vault.get = async (key: string) => {
      const body = await get(key);
      if (key === backupRecordKey(BACKUP)) {
        await vault.put(added, manifest);
        vault.objects.get(backupRecordKey(BACKUP))!.body = Buffer.from(JSON.stringify(document, null, 2));
      }
      return body;
    };

    const refused = await verifyBackupIndex(vault, BACKUP, { indexSha256 }).catch((e: unknown) => e);

    expect(refused).toBeInstanceOf(BackupIntegrityError);
    expect((refused as BackupIntegrityError).breaks).toEqual([`${added} is not committed by backup.json: it was added after the backup`]);
  });

  it('reads each volume through the summary it checked against backup.json, not a version written after that read', async () => {
    const { vault, indexSha256 } = await finalized();
    const summaryKey = volumeSummaryKey(BACKUP, MINIO);
    const forged = { ...(JSON.parse((await vault.get(summaryKey)).toString()) as VolumeSummary), indexKey: volumeIndexKey(BACKUP, ETCD) };
    const get = vault.get.bind(vault);
    vault.get = async (key: string) => {
      const body = await get(key);
      if (key === summaryKey) vault.objects.get(summaryKey)!.body = Buffer.from(JSON.stringify(forged, null, 2));
      return body;
    };

    // The forged summary would send the check to the other volume's index.
    await expect(verifyBackupIndex(vault, BACKUP, { indexSha256 })).resolves.toMatchObject({ volumes: 2 });
  });

  it('refuses a summary altered since the backup as such, without following it to an index that is not there', async () => {
    const { vault, indexSha256 } = await finalized();
    const summaryKey = volumeSummaryKey(BACKUP, MINIO);
    const forged = { ...(JSON.parse((await vault.get(summaryKey)).toString()) as VolumeSummary), indexKey: `backups/${BACKUP}/volumes/nowhere/index.jsonl.gz` };
    vault.objects.get(summaryKey)!.body = Buffer.from(JSON.stringify(forged, null, 2));

    const refused = await verifyBackupIndex(vault, BACKUP, { indexSha256 }).catch((e: unknown) => e);

    expect(refused).toBeInstanceOf(BackupIntegrityError);
    expect((refused as BackupIntegrityError).breaks).toEqual([expect.stringMatching(new RegExp(`^${summaryKey} was altered: its SHA-256 is [0-9a-f]{64} where backup.json commits to [0-9a-f]{64}$`))]);
  });
});

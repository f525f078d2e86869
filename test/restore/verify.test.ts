import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { backupVolume, type BackupResult } from '../../core/datamover/backup.js';
import { displayPath, IndexReader, IndexReadError, IndexWriter, type IndexEntry } from '../../core/datamover/index-format.js';
import { RETRY_POLICIES } from '../../core/workflow/policies.js';
import { BackupIndexInvalidError, BackupIntegrityError, verifyBackupIndex } from '../../core/restore/verify.js';
import type { VolumeSummary } from '../../core/datamover/summary.js';
import { backupRecordKey, inventoryKey, manifestKey, milvusStateKey, packKey, PACKS_PREFIX, volumeIndexKey, volumeSummaryKey } from '../../core/vault/layout.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import type { ObjectInfo } from '../../core/vault/store.js';
import { buildTree, cutReadsShort, dropIndexLines, Rng, SMALL_CHUNKS, tempDir, writeBackupRecord } from '../datamover/helpers.js';

// verifyBackupIndex against backups the real data mover wrote into the in-memory vault, with
// the index document the backup workflow's Finalize step writes.

const BACKUP = 'nightly-20261123020000';
const ETCD = 'data-milvus-etcd-0';
const MINIO = 'export-milvus-minio-0';
const NOW = new Date('2026-11-23T02:00:00.000Z');
const SERVICE = manifestKey(BACKUP, { group: 'core', kind: 'Service', namespace: 'vector-db', name: 'milvus' });

/** The index document as the backup workflow's Finalize step writes it. */
function backupDocument(backupId: string, volumes: readonly string[]): Record<string, unknown> {
  return {
    format: 'milvus-guard/backup-v1',
    backupId,
    plan: 'nightly',
    cluster: { name: 'prod', eksClusterName: 'prod-eks', region: 'eu-west-1' },
    namespace: 'vector-db',
    startedAt: NOW.toISOString(),
    completedAt: '2026-11-23T02:09:00.000Z',
    inventoryKey: inventoryKey(backupId),
    milvusKey: milvusStateKey(backupId),
    rowCounts: [{ database: 'default', collection: 'docs', rows: 1000, confirmedBy: 'count' }],
    volumes: volumes.map((pvc) => ({
      pvc,
      role: pvc === ETCD ? 'etcd' : 'minio',
      snapshot: `${backupId}-${pvc}`,
      indexKey: volumeIndexKey(backupId, pvc),
      summaryKey: volumeSummaryKey(backupId, pvc),
      bytesTotal: 0,
      bytesUploaded: 0,
      files: 0,
    })),
  };
}

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

/** A copy of the vault that a test may damage without touching the others'. */
function copyOf(vault: InMemoryVaultStore): InMemoryVaultStore {
  const copy = new InMemoryVaultStore(vault.url);
  for (const [key, o] of vault.objects) copy.objects.set(key, { ...o, body: Buffer.from(o.body) });
  return copy;
}

/** The first chunk of the file at `path` in one volume's index. */
async function firstChunkOf(vault: InMemoryVaultStore, volume: string, path: string): Promise<{ key: string; offset: number }> {
  const reader = new IndexReader(await vault.openRead(volumeIndexKey(BACKUP, volume)), 'test');
  for await (const e of reader.entries()) {
    if (e.path.toString() === path) return { key: packKey(e.chunks![0]!.pack), offset: e.chunks![0]!.offset };
  }
  throw new Error(`${path} is not in the index of ${volume}`);
}

/** Every file of one volume's index with a chunk in the pack `key`, in index order, as the error names them. */
async function filesNeeding(vault: InMemoryVaultStore, volume: string, key: string): Promise<string[]> {
  const reader = new IndexReader(await vault.openRead(volumeIndexKey(BACKUP, volume)), 'test');
  const out: string[] = [];
  for await (const e of reader.entries()) if (e.chunks?.some((c) => packKey(c.pack) === key)) out.push(`${volume}:${displayPath(e.path)}`);
  return out;
}

/** Replaces one volume's index by one holding exactly `entries` (written by the real writer). */
async function replaceIndex(vault: InMemoryVaultStore, volume: string, entries: IndexEntry[]): Promise<void> {
  const file = join(await tempDir('verify-index'), 'index.jsonl.gz');
  const writer = new IndexWriter(file, { volume, backupId: BACKUP, chunker: 'test' });
  for (const entry of entries) await writer.write(entry);
  await writer.close();
  await vault.putFile(volumeIndexKey(BACKUP, volume), file);
}

const fileEntry = (path: string, size: number, chunks: IndexEntry['chunks']): IndexEntry => ({ path: Buffer.from(path), type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeNs: 0n, size, ...(chunks ? { chunks } : {}) });

const failure = (promise: Promise<unknown>): Promise<Error> =>
  promise.then(
    () => {
      throw new Error('expected the verification to fail');
    },
    (err: unknown) => err as Error,
  );

let base: InMemoryVaultStore;
let exported: BackupResult[];

beforeAll(async () => {
  const dir = await tempDir('verify');
  await mkdir(join(dir, 'etcd', 'member', 'snap'), { recursive: true });
  await writeFile(join(dir, 'etcd', 'member', 'snap', 'db'), new Rng('etcd').bytes(90_000));
  await writeFile(join(dir, 'etcd', 'member', 'wal'), new Rng('wal').bytes(20_000));
  await buildTree(join(dir, 'minio'), 'minio');
  base = new InMemoryVaultStore('memory://vault');
  exported = [];
  for (const [volume, source] of [
    [ETCD, join(dir, 'etcd')],
    [MINIO, join(dir, 'minio')],
  ] as const) {
    exported.push(await backupVolume({ source, vault: base, volume, backupId: BACKUP, now: NOW, chunker: SMALL_CHUNKS, packSize: 32 * 1024, workers: 1 }));
  }
  await base.put(SERVICE, Buffer.from('apiVersion: v1\nkind: Service\nmetadata:\n  name: milvus\n'));
  await writeBackupRecord(base, BACKUP, [ETCD, MINIO]);
});

describe('verifyBackupIndex', () => {
  it('verifies a complete backup and counts its volumes, files, chunks, packs and bytes', async () => {
    const vault = copyOf(base);
    const packsInVault = [...vault.objects.keys()].filter((k) => k.startsWith(PACKS_PREFIX)).length;

    const result = await verifyBackupIndex(vault, BACKUP);

    expect(result).toEqual({
      volumes: 2,
      files: exported.reduce((n, r) => n + r.files, 0),
      chunks: exported.reduce((n, r) => n + r.chunksNew + r.chunksReused, 0),
      packs: packsInVault,
      bytes: exported.reduce((n, r) => n + r.bytesTotal, 0),
      archived: 0,
      unverified: [],
    });
  });

  it('checks each pack once, however many files share it, and reads no chunk data', async () => {
    const vault = copyOf(base);
    const heads: string[] = [];
    let reads = 0;
    const head = vault.head.bind(vault);
    vault.head = async (key: string): Promise<ObjectInfo | undefined> => {
      if (key.startsWith(PACKS_PREFIX)) heads.push(key);
      return head(key);
    };
    vault.getRange = async () => {
      reads++;
      throw new Error('chunk data must not be read');
    };

    const result = await verifyBackupIndex(vault, BACKUP);

    expect(result.chunks).toBeGreaterThan(result.packs); // packs are shared, so a per-chunk check would repeat
    expect(heads).toHaveLength(result.packs);
    expect(new Set(heads).size).toBe(result.packs);
    expect(reads).toBe(0);
  });

  it('keeps no more pack checks in flight than asked', async () => {
    const vault = copyOf(base);
    let inFlight = 0;
    let most = 0;
    const head = vault.head.bind(vault);
    vault.head = async (key: string): Promise<ObjectInfo | undefined> => {
      most = Math.max(most, ++inFlight);
      await new Promise((resolve) => setImmediate(resolve));
      inFlight--;
      return head(key);
    };

    const result = await verifyBackupIndex(vault, BACKUP, { concurrency: 3 });

    expect(result.packs).toBeGreaterThan(3);
    expect(most).toBe(3);
  });

  it('names a missing pack and the file that needs it', async () => {
    const vault = copyOf(base);
    const { key } = await firstChunkOf(vault, ETCD, 'member/wal');
    vault.objects.delete(key);

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIndexInvalidError);
    expect(err.name).toBe('BackupIndexInvalid');
    expect(err.message).toContain(`references 1 pack(s) that are missing or damaged in memory://vault: ${key} is missing (needed by ${ETCD}:member/wal)`);
  });

  it('passes a read of an index cut short on as what it is, for the workflow to retry, not as a backup that cannot be restored', async () => {
    const vault = copyOf(base);
    cutReadsShort(vault, volumeIndexKey(BACKUP, MINIO));

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(IndexReadError);
    expect(err.name).toBe('VaultReadInterrupted');
    expect(RETRY_POLICIES.transient.flatMap((r) => r.ErrorEquals)).toContain(err.name);
  });

  it('names the first three files that need a missing pack and counts the others', async () => {
    const vault = copyOf(base);
    const { key } = await firstChunkOf(vault, MINIO, 'tool.sh');
    const needing = await filesNeeding(vault, MINIO, key);
    vault.objects.delete(key);

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(needing.length).toBeGreaterThan(3);
    expect(err.message).toContain(`${key} is missing (needed by ${needing.slice(0, 3).join(', ')} and ${needing.length - 3} more file(s))`);
  });

  it('names a pack that is shorter than the chunks read from it', async () => {
    const vault = copyOf(base);
    const { key } = await firstChunkOf(vault, ETCD, 'member/snap/db');
    const pack = vault.objects.get(key)!;
    pack.body = pack.body.subarray(0, pack.body.length - 1);

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIndexInvalidError);
    expect(err.message).toContain(`${key} is ${pack.body.length} bytes, but chunks are read up to byte ${pack.body.length + 1}`);
    expect(err.message).toContain(`${ETCD}:member/snap/db`);
  });

  it('names only the first few damaged packs and counts the rest', async () => {
    const vault = copyOf(base);
    const packs = [...vault.objects.keys()].filter((k) => k.startsWith(PACKS_PREFIX)).sort();
    for (const key of packs) vault.objects.delete(key);

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err.message).toContain(`references ${packs.length} pack(s)`);
    expect(err.message).toContain(packs[0]);
    expect(err.message).not.toContain(packs[packs.length - 1]);
    expect(err.message).toContain(`and ${packs.length - 5} more pack(s)`);
  });

  it('says a backup without backup.json never finished or was expired', async () => {
    const vault = copyOf(base);
    vault.objects.delete(backupRecordKey(BACKUP));

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIndexInvalidError);
    expect(err.message).toContain(`backup ${BACKUP} has no index in the vault: it never finished or was expired`);
  });

  it('refuses a backup.json that is not JSON', async () => {
    const vault = copyOf(base);
    await vault.put(backupRecordKey(BACKUP), Buffer.from('{"format": "milvus-guard/backup-v1", "backupId": '));

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIndexInvalidError);
    expect(err.message).toContain(`${backupRecordKey(BACKUP)} in memory://vault) is not JSON`);
  });

  it('refuses a backup.json without volumes, naming the field', async () => {
    const vault = copyOf(base);
    await vault.put(backupRecordKey(BACKUP), json({ ...backupDocument(BACKUP, []), volumes: undefined }));

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIndexInvalidError);
    expect(err.message).toMatch(/is not a backup index: volumes: /);
  });

  it('refuses a backup.json that belongs to another backup', async () => {
    const vault = copyOf(base);
    await vault.put(backupRecordKey(BACKUP), json(backupDocument('nightly-20261122020000', [ETCD, MINIO])));

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIndexInvalidError);
    expect(err.message).toContain(`belongs to backup nightly-20261122020000, not ${BACKUP}`);
  });

  it('names the volume whose summary is missing', async () => {
    const vault = copyOf(base);
    vault.objects.delete(volumeSummaryKey(BACKUP, ETCD));

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIndexInvalidError);
    expect(err.message).toContain(`backup ${BACKUP} has no complete export of volume ${ETCD} (${volumeSummaryKey(BACKUP, ETCD)} is missing`);
  });

  it('refuses a summary that no longer reads as altered, when backup.json commits to its bytes', async () => {
    const vault = copyOf(base);
    await vault.put(volumeSummaryKey(BACKUP, ETCD), Buffer.from('not json'));

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIntegrityError);
    expect((err as BackupIntegrityError).breaks).toEqual([expect.stringMatching(new RegExp(`^${volumeSummaryKey(BACKUP, ETCD)} was altered: its SHA-256 is [0-9a-f]{64} where backup.json commits to [0-9a-f]{64}$`))]);
  });

  it('names the volume whose summary is unreadable, under a backup.json written before it held summary hashes', async () => {
    const vault = copyOf(base);
    await vault.put(backupRecordKey(BACKUP), json(backupDocument(BACKUP, [ETCD, MINIO])));
    await vault.put(volumeSummaryKey(BACKUP, ETCD), Buffer.from('not json'));

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIndexInvalidError);
    expect(err.message).toContain(`the summary of volume ${ETCD} in backup ${BACKUP}`);
  });

  it('refuses an inventory that does not hash as backup.json commits, before anything is restored', async () => {
    const vault = copyOf(base);
    const document = JSON.parse((await vault.get(backupRecordKey(BACKUP))).toString()) as Record<string, unknown>;
    const inventory = Buffer.from('{"volumes":[]}');
    await vault.put(inventoryKey(BACKUP), Buffer.from('{"volumes":[{"pvc":"data-milvus-etcd-0","capacity":"900Ti"}]}'));
    await vault.put(backupRecordKey(BACKUP), json({ ...document, inventorySha256: createHash('sha256').update(inventory).digest('hex') }));

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIntegrityError);
    expect((err as BackupIntegrityError).breaks).toEqual([expect.stringMatching(new RegExp(`^${inventoryKey(BACKUP)} was altered: its SHA-256 is [0-9a-f]{64} where backup.json commits to [0-9a-f]{64}$`))]);
  });

  it('names the volume whose file index is missing', async () => {
    const vault = copyOf(base);
    vault.objects.delete(volumeIndexKey(BACKUP, MINIO));

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIndexInvalidError);
    expect(err.message).toContain(`the file index of volume ${MINIO} in backup ${BACKUP} (${volumeIndexKey(BACKUP, MINIO)}) is missing`);
  });

  it('refuses a corrupt file index, naming the volume', async () => {
    const vault = copyOf(base);
    const index = vault.objects.get(volumeIndexKey(BACKUP, MINIO))!;
    index.body = index.body.subarray(0, Math.floor(index.body.length / 2)); // a cut-off upload

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIndexInvalidError);
    expect(err.message).toContain(`index of backup ${BACKUP} volume ${MINIO}`);
    expect(err.message).toContain('the index is damaged');
  });

  it('refuses a file index that belongs to another volume', async () => {
    const vault = copyOf(base);
    await vault.put(volumeIndexKey(BACKUP, MINIO), await vault.get(volumeIndexKey(BACKUP, ETCD)));

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIndexInvalidError);
    expect(err.message).toContain(`its header names backup ${BACKUP} volume ${ETCD}`);
  });

  it('refuses a file whose chunks do not add up to its size', async () => {
    const vault = copyOf(base);
    const pack = 'a'.repeat(32);
    await replaceIndex(vault, ETCD, [
      { path: Buffer.alloc(0), type: 'dir', mode: 0o755, uid: 0, gid: 0, mtimeNs: 0n, size: 0 },
      fileEntry('db', 10, [{ hash: 'f'.repeat(64), pack, offset: 0, length: 6 }]),
    ]);

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIndexInvalidError);
    expect(err.message).toContain(`file ${ETCD}:db has chunks adding up to 6 bytes, but its size is 10`);
  });

  it('refuses a file that references a malformed pack id', async () => {
    const vault = copyOf(base);
    await replaceIndex(vault, ETCD, [fileEntry('db', 4, [{ hash: 'f'.repeat(64), pack: '../../escape', offset: 0, length: 4 }])]);

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIndexInvalidError);
    expect(err.message).toContain('references the malformed pack id "../../escape"');
  });

  it('passes vault errors through unchanged, so the workflow retries them', async () => {
    const vault = copyOf(base);
    const throttled = Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown' });
    vault.head = async () => {
      throw throttled;
    };

    await expect(verifyBackupIndex(vault, BACKUP)).rejects.toBe(throttled);
  });

  it('verifies a backup in a directory vault and finds a pack deleted from it', async () => {
    const root = await tempDir('verify-file-vault');
    const vault = new FileVaultStore(root, { directIo: false });
    for (const [key, o] of base.objects) await vault.put(key, o.body);
    const intact = await verifyBackupIndex(vault, BACKUP);
    const { key } = await firstChunkOf(base, ETCD, 'member/wal');

    await rm(join(root, ...key.split('/')));

    expect(intact).toEqual(await verifyBackupIndex(base, BACKUP));
    await expect(verifyBackupIndex(vault, BACKUP)).rejects.toThrow(`${key} is missing (needed by ${ETCD}:member/wal)`);
  });

  it('refuses an index with whole lines removed (still valid gzip), naming the volume and what is missing', async () => {
    const vault = copyOf(base);
    await dropIndexLines(vault, volumeIndexKey(BACKUP, MINIO), 3);

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIntegrityError);
    expect(err.name).toBe('BackupCorrupt');
    expect(err.message).toContain(`backup ${BACKUP} failed its integrity check, nothing was restored: the file index of volume ${MINIO} (${volumeIndexKey(BACKUP, MINIO)}) does not match its summary`);
    expect(err.message).toContain('(3 missing)');
  });

  it('refuses an altered summary, naming it', async () => {
    const vault = copyOf(base);
    const key = volumeSummaryKey(BACKUP, ETCD);
    const summary = JSON.parse((await vault.get(key)).toString()) as VolumeSummary;
    await vault.put(key, Buffer.from(JSON.stringify({ ...summary, stats: { ...summary.stats, files: 1 } })));

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err.name).toBe('BackupCorrupt');
    expect(err.message).toContain(`${key} was altered: its SHA-256 is`);
  });

  it('refuses a flipped byte in a captured manifest, naming it', async () => {
    const vault = copyOf(base);
    vault.objects.get(SERVICE)!.body[5]! ^= 0x20;

    const err = await failure(verifyBackupIndex(vault, BACKUP));

    expect(err).toBeInstanceOf(BackupIntegrityError);
    expect(err.message).toContain(`${SERVICE} was altered`);
  });

  it('verifies a backup written before the chain but lists what it could not check', async () => {
    const vault = copyOf(base);
    await vault.put(backupRecordKey(BACKUP), json(backupDocument(BACKUP, [ETCD, MINIO])));

    const result = await verifyBackupIndex(vault, BACKUP);

    expect(result.unverified).toEqual([
      `${backupRecordKey(BACKUP)} commits to no SHA-256 of the summary of volume ${ETCD} (written before the integrity chain)`,
      `${backupRecordKey(BACKUP)} commits to no SHA-256 of the summary of volume ${MINIO} (written before the integrity chain)`,
      `${backupRecordKey(BACKUP)} commits to no manifests (written before the integrity chain)`,
    ]);
  });
});

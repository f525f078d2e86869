/**
 * An incremental backup whose parent (the newest earlier backup of the volume) has a damaged
 * index: it reads everything, as `--full` does, names the parent it passed over and why (in its
 * result, the CLI's output and its own summary), and never reuses the damaged index's chunk
 * references.
 */
import { chmod, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from '@jest/globals';
import { backupVolume, type BackupOptions } from '../../core/datamover/backup.js';
import { restoreVolume } from '../../core/datamover/restore.js';
import { readVolumeSummary } from '../../core/datamover/summary.js';
import { verifyVault } from '../../core/datamover/verify.js';
import { volumeIndexKey } from '../../core/vault/layout.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { ObjectNotFoundError, type VaultStore } from '../../core/vault/store.js';
import { buildTree, dropIndexLines, runDatamoverCli, SMALL_CHUNKS, snapshotTree, tempDir } from './helpers.js';

const VOLUME = 'vol';
const DAY = 24 * 3600 * 1000;
const at = (day: number): Date => new Date(Date.parse('2026-12-01T02:00:00Z') + day * DAY);

function options(vault: VaultStore, source: string, backupId: string, day: number): BackupOptions {
  return { source, vault, volume: VOLUME, backupId, now: at(day), chunker: SMALL_CHUNKS, packSize: 64 * 1024, workers: 1 };
}

/** Two backups of one seeded tree (b1, then b2 incremental from it). */
async function twoBackups(): Promise<{ dir: string; source: string; vault: InMemoryVaultStore }> {
  const dir = await tempDir('damaged-parent');
  const source = join(dir, 'source');
  await buildTree(source);
  const vault = new InMemoryVaultStore();
  await backupVolume(options(vault, source, 'b1', 0));
  expect((await backupVolume(options(vault, source, 'b2', 1))).parentBackupId).toBe('b1');
  return { dir, source, vault };
}

/** Rewrites the first chunk reference of the index's first file to point at other bytes of its pack: still valid gzip and JSON, still sorted. */
async function redirectFirstChunk(vault: InMemoryVaultStore, key: string): Promise<void> {
  const lines = gunzipSync(await vault.get(key)).toString('utf8').split('\n');
  const i = lines.findIndex((l) => l.includes('"c":[["'));
  const entry = JSON.parse(lines[i]!) as { c: [string, string, number, number][] };
  const [hash, pack, offset, length] = entry.c[0]!;
  entry.c[0] = [hash, pack, offset + 1, length];
  lines[i] = JSON.stringify(entry);
  await vault.put(key, gzipSync(lines.join('\n')));
}

async function restoresExactly(vault: VaultStore, dir: string, source: string, backupId: string): Promise<void> {
  const target = join(dir, `restored-${backupId}`);
  await restoreVolume({ vault, volume: VOLUME, backupId, target });
  expect(await snapshotTree(target)).toEqual(await snapshotTree(source));
}

describe('an incremental backup whose parent index is damaged', () => {
  it('reads everything when the parent index is missing, and says which parent it passed over', async () => {
    const { dir, source, vault } = await twoBackups();
    vault.objects.delete(volumeIndexKey('b2', VOLUME));

    const result = await backupVolume(options(vault, source, 'b3', 2));

    expect(result.parentBackupId).toBeNull();
    expect(result.parentSkipped).toEqual({ backupId: 'b2', reason: `its index ${volumeIndexKey('b2', VOLUME)} is missing` });
    expect(result.bytesScanned).toBe(result.bytesTotal);
    expect(result.filesUnchanged).toBe(0);
    await restoresExactly(vault, dir, source, 'b3');
  });

  it('reads everything when the parent index is not gzip', async () => {
    const { source, vault } = await twoBackups();
    await vault.put(volumeIndexKey('b2', VOLUME), Buffer.from('not an index'));

    const result = await backupVolume(options(vault, source, 'b3', 2));

    expect(result.parentSkipped).toEqual({ backupId: 'b2', reason: expect.stringMatching(/^index backups\/b2\/volumes\/vol\/index\.jsonl\.gz: cannot read it/) });
    expect(result.bytesScanned).toBe(result.bytesTotal);
  });

  it('reads everything when the parent index lost lines its summary commits to', async () => {
    const { dir, source, vault } = await twoBackups();
    await dropIndexLines(vault, volumeIndexKey('b2', VOLUME), 2);

    const result = await backupVolume(options(vault, source, 'b3', 2));

    expect(result.parentBackupId).toBeNull();
    expect(result.parentSkipped?.reason).toMatch(/^its index backups\/b2\/volumes\/vol\/index\.jsonl\.gz does not match its summary: it holds \d+ entries where the summary commits to \d+ \(2 missing\)/);
    await restoresExactly(vault, dir, source, 'b3');
  });

  it('never reuses a chunk reference of a parent index that was altered, so the new backup restores byte-exact', async () => {
    const { dir, source, vault } = await twoBackups();
    await redirectFirstChunk(vault, volumeIndexKey('b2', VOLUME));

    const result = await backupVolume(options(vault, source, 'b3', 2));

    expect(result.parentSkipped?.reason).toMatch(/does not match its summary: .*its SHA-256 is [0-9a-f]{64} where the summary commits to/);
    await restoresExactly(vault, dir, source, 'b3');
  });

  it('records the parent it passed over in its own summary', async () => {
    const { source, vault } = await twoBackups();
    vault.objects.delete(volumeIndexKey('b2', VOLUME));

    await backupVolume(options(vault, source, 'b3', 2));

    const summary = await readVolumeSummary(vault, 'b3', VOLUME);
    expect(summary).toMatchObject({ parentBackupId: null, parentSkipped: { backupId: 'b2', reason: expect.stringContaining('is missing') } });
  });

  it('uses an intact parent as before and records no skipped parent', async () => {
    const { source, vault } = await twoBackups();

    const result = await backupVolume(options(vault, source, 'b3', 2));

    expect(result).toMatchObject({ parentBackupId: 'b2', parentSkipped: null, bytesScanned: 0 });
    expect((await readVolumeSummary(vault, 'b3', VOLUME)).parentSkipped).toBeUndefined();
  });

  it('fails, instead of reading everything, when the vault cannot be reached for the parent index', async () => {
    const { source, vault } = await twoBackups();
    const unreachable = Object.assign(Object.create(vault) as InMemoryVaultStore, {
      openRead: async () => {
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { name: 'TimeoutError' });
      },
    });

    await expect(backupVolume(options(unreachable, source, 'b3', 2))).rejects.toThrow('ECONNREFUSED');
  });
});

describe('an incremental backup whose parent references a pack that is missing', () => {
  /** b1 locked for a week, with one of its packs then removed out of band (by hand, a lifecycle rule, damage). */
  async function lockedWithAPackGone(): Promise<{ dir: string; source: string; vault: FileVaultStore; gone: string }> {
    const dir = await tempDir('missing-pack');
    const source = join(dir, 'source');
    await buildTree(source);
    const root = join(dir, 'vault');
    const vault = new FileVaultStore(root, { now: () => at(1) });
    await backupVolume({ ...options(vault, source, 'b1', 0), retainUntil: at(7) });
    const packs: string[] = [];
    for await (const info of vault.list('data/packs/')) packs.push(info.key);
    const gone = packs.sort()[0]!;
    await rm(join(root, gone));
    return { dir, source, vault, gone };
  }

  it('reads everything again without that parent, names it and the pack, and restores byte-exact', async () => {
    const { dir, source, vault, gone } = await lockedWithAPackGone();

    // Locked a day longer than b1: every pack it reuses has its lock extended, which finds the gap.
    const result = await backupVolume({ ...options(vault, source, 'b2', 1), retainUntil: at(8) });

    expect(result).toMatchObject({ parentBackupId: null, parentSkipped: { backupId: 'b1', reason: `its pack ${gone} is missing` }, filesUnchanged: 0 });
    expect(result.bytesScanned).toBe(result.bytesTotal);
    expect((await readVolumeSummary(vault, 'b2', VOLUME)).parentSkipped).toEqual(result.parentSkipped);
    await restoresExactly(vault, dir, source, 'b2');
    const problems = (await verifyVault({ vault, readData: true })).problems;
    expect(new Set(problems.map((p) => p.backupId))).toEqual(new Set(['b1']));
  });

  it.each([
    ['locked no longer than its parent, so no lock is extended', at(7)],
    ['without Object Lock', undefined],
  ])('finds the gap by looking every reused pack up when it is %s, and writes the volume anew', async (_how, retainUntil) => {
    const { dir, source, vault, gone } = await lockedWithAPackGone();

    const result = await backupVolume({ ...options(vault, source, 'b2', 1), ...(retainUntil ? { retainUntil } : {}) });

    expect(result).toMatchObject({ parentBackupId: null, parentSkipped: { backupId: 'b1', reason: `its pack ${gone} is missing` }, packsRetentionExtended: 0 });
    expect(result.bytesScanned).toBe(result.bytesTotal);
    await restoresExactly(vault, dir, source, 'b2');
    // The next backup is incremental again, from the whole one.
    expect(await backupVolume({ ...options(vault, source, 'b3', 2), ...(retainUntil ? { retainUntil } : {}) })).toMatchObject({ parentBackupId: 'b2', chunksNew: 0 });
  });
});

describe('an incremental backup whose parent\'s pack goes between its lookup and its lock extension', () => {
  it('takes the pack for missing, reads everything again and names it', async () => {
    const dir = await tempDir('pack-race');
    const source = join(dir, 'source');
    await buildTree(source);
    const vault = new InMemoryVaultStore('memory://vault', { now: () => at(1) });
    await backupVolume({ ...options(vault, source, 'b1', 0), retainUntil: at(7) });
    // The first extension finds its pack gone (deleted out of band just after the HEAD).
    let gone: string | undefined;
    const extend = vault.extendRetention.bind(vault);
    vault.extendRetention = async (key: string, until: Date) => {
      if (gone === undefined && key.startsWith('data/packs/')) {
        gone = key;
        throw new ObjectNotFoundError(vault.url, key);
      }
      return extend(key, until);
    };

    const result = await backupVolume({ ...options(vault, source, 'b2', 1), retainUntil: at(8) });

    expect(result).toMatchObject({ parentBackupId: null, parentSkipped: { backupId: 'b1', reason: `its pack ${gone} is missing` }, filesUnchanged: 0 });
    await restoresExactly(vault, dir, source, 'b2');
  });
});

describe('an incremental backup whose parent references a pack cut short', () => {
  /** b1 locked for a week, with its largest pack then cut to half its length out of band. */
  async function lockedWithAPackCut(): Promise<{ dir: string; source: string; vault: FileVaultStore; cut: string }> {
    const dir = await tempDir('short-pack');
    const source = join(dir, 'source');
    await buildTree(source);
    const root = join(dir, 'vault');
    const vault = new FileVaultStore(root, { now: () => at(1) });
    await backupVolume({ ...options(vault, source, 'b1', 0), retainUntil: at(7) });
    const packs: { key: string; size: number }[] = [];
    for await (const info of vault.list('data/packs/')) packs.push(info);
    const { key: cut, size } = packs.sort((a, b) => b.size - a.size)[0]!;
    await chmod(join(root, cut), 0o600);
    await truncate(join(root, cut), Math.floor(size / 2));
    return { dir, source, vault, cut };
  }

  it.each([
    ['locked a day longer than its parent, so its locks are extended', at(8)],
    ['locked no longer than its parent, so no lock is extended', at(7)],
    ['without Object Lock', undefined],
  ])('finds the pack too short for its chunks when it is %s, reads everything again and restores byte-exact', async (_how, retainUntil) => {
    const { dir, source, vault, cut } = await lockedWithAPackCut();

    const result = await backupVolume({ ...options(vault, source, 'b2', 1), ...(retainUntil ? { retainUntil } : {}) });

    expect(result).toMatchObject({ parentBackupId: null, parentSkipped: { backupId: 'b1' }, filesUnchanged: 0 });
    expect(result.parentSkipped?.reason).toMatch(new RegExp(`^its pack ${cut} holds \\d+ bytes where its chunks end at byte \\d+$`));
    expect(result.bytesScanned).toBe(result.bytesTotal);
    expect((await readVolumeSummary(vault, 'b2', VOLUME)).parentSkipped).toEqual(result.parentSkipped);
    await restoresExactly(vault, dir, source, 'b2');
    // The chain has healed: the next backup is incremental again, from the whole one.
    expect(await backupVolume({ ...options(vault, source, 'b3', 2), ...(retainUntil ? { retainUntil } : {}) })).toMatchObject({ parentBackupId: 'b2', chunksNew: 0 });
    await restoresExactly(vault, dir, source, 'b3');
  });
});

describe('the datamover backup command with a damaged parent', () => {
  const cli = (args: string[], day: number) => runDatamoverCli(args, at(day));

  afterEach(() => {
    process.exitCode = 0;
  });

  async function damagedVault(): Promise<{ source: string; vault: string[] }> {
    const dir = await tempDir('damaged-parent-cli');
    const source = join(dir, 'source');
    await buildTree(source);
    const vaultDir = join(dir, 'vault');
    const vault = ['--vault', `file://${vaultDir}`];
    for (const [day, id] of ['b1', 'b2'].entries()) expect((await cli(['backup', ...vault, '--source', source, '--volume', VOLUME, '--backup-id', id], day)).code).toBe(0);
    await rm(join(vaultDir, volumeIndexKey('b2', VOLUME)));
    return { source, vault };
  }

  it('backs up in full, exit 0, and --json names the parent passed over and why', async () => {
    const { source, vault } = await damagedVault();

    const r = await cli(['backup', ...vault, '--source', source, '--volume', VOLUME, '--backup-id', 'b3', '--json'], 2);

    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ parentBackupId: null, parentSkipped: { backupId: 'b2', reason: `its index ${volumeIndexKey('b2', VOLUME)} is missing` } });
  });

  it('says in its summary line that it read everything because the parent was passed over', async () => {
    const { source, vault } = await damagedVault();

    const r = await cli(['backup', ...vault, '--source', source, '--volume', VOLUME, '--backup-id', 'b3'], 2);

    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/, full: backup b2 was passed over as the parent \(its index backups\/b2\/volumes\/vol\/index\.jsonl\.gz is missing; datamover verify names the damage\), /);
  });
});

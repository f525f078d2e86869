import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { backupVolume } from '../../core/datamover/backup.js';
import { ProgressReporter, readProgress, type VolumeProgress } from '../../core/datamover/progress.js';
import { restoreVolume } from '../../core/datamover/restore.js';
import { backupProgressKey, restoreProgressKey } from '../../core/vault/layout.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { Rng, SMALL_CHUNKS, snapshotTree, tempDir } from './helpers.js';

const NOW = new Date('2026-03-01T02:00:00Z');
const VOLUME = 'data-milvus-etcd-0';

/** A wall clock that moves `stepMs` each time it is read: time passes as the backup works, without sleeping. */
function steppingClock(stepMs: number): () => Date {
  let t = NOW.getTime();
  return () => new Date((t += stepMs));
}

/** A vault that records every progress object written, in order, and can refuse them. */
class ProgressRecordingVault extends InMemoryVaultStore {
  readonly progressWrites: VolumeProgress[] = [];
  failProgress = false;
  override async put(key: string, body: Uint8Array, options?: Parameters<InMemoryVaultStore['put']>[2]): Promise<void> {
    if (key.includes('/progress/')) {
      if (this.failProgress) throw new Error('AccessDenied: not allowed to write progress');
      this.progressWrites.push(JSON.parse(Buffer.from(body).toString('utf8')) as VolumeProgress);
    }
    return super.put(key, body, options);
  }
}

async function volumeOf(files: number, bytesEach: number): Promise<string> {
  const source = join(await tempDir('progress'), 'source');
  await mkdir(join(source, 'segments'), { recursive: true });
  const rng = new Rng('progress');
  for (let i = 0; i < files; i++) await writeFile(join(source, 'segments', `s${i}`), rng.bytes(bytesEach));
  return source;
}

describe('progress of a backup (export)', () => {
  it('writes at most one progress object per interval of the injected clock, and a complete last one', async () => {
    // Prepare: every clock read moves 1 s; one write per 5 s at most.
    const source = await volumeOf(40, 20_000);
    const vault = new ProgressRecordingVault();

    // Act
    const result = await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: NOW, chunker: SMALL_CHUNKS, workers: 1, progress: { now: steppingClock(1000), intervalMs: 5000 } });

    // Assess
    const writes = vault.progressWrites;
    const copying = writes.filter((w) => w.phase === 'copying');
    expect(copying.length).toBeGreaterThan(2);
    for (let i = 1; i < copying.length; i++) {
      expect(Date.parse(copying[i]!.updatedAt) - Date.parse(copying[i - 1]!.updatedAt)).toBeGreaterThanOrEqual(5000);
    }
    expect(writes[0]).toMatchObject({ phase: 'counting', filesTotal: null });
    const last = await readProgress(vault, backupProgressKey('b1', VOLUME));
    expect(last).toEqual(writes.at(-1));
    expect(last).toMatchObject({ kind: 'export', phase: 'done', volume: VOLUME, backupId: 'b1', filesDone: 40, filesTotal: 40, bytesDone: 800_000, bytesTotal: 800_000, etaSeconds: 0 });
    expect(result.bytesTotal).toBe(800_000);
  });

  it('reports bytes done, the rate and an ETA against the totals of the walk while it copies', async () => {
    const source = await volumeOf(20, 10_000);
    const vault = new ProgressRecordingVault();

    await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: NOW, chunker: SMALL_CHUNKS, workers: 1, progress: { now: steppingClock(1000), intervalMs: 1000 } });

    const middle = vault.progressWrites.find((w) => w.phase === 'copying' && w.bytesDone > 0 && w.bytesDone < 200_000)!;
    expect(middle).toMatchObject({ filesTotal: 20, bytesTotal: 200_000 });
    expect(middle.bytesPerSecond).toBeGreaterThan(0);
    expect(middle.etaSeconds).toBe(Math.round((200_000 - middle.bytesDone) / (middle.bytesPerSecond as number)));
  });

  it('ends an incremental backup that reads nothing at 100%: unchanged files count as done', async () => {
    const source = await volumeOf(5, 10_000);
    const vault = new ProgressRecordingVault();
    await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: NOW, workers: 1 });

    const second = await backupVolume({ source, vault, volume: VOLUME, backupId: 'b2', now: new Date('2026-03-02T02:00:00Z'), workers: 1, progress: { now: steppingClock(1000) } });

    expect(second.bytesScanned).toBe(0);
    expect(await readProgress(vault, backupProgressKey('b2', VOLUME))).toMatchObject({ phase: 'done', bytesDone: 50_000, bytesTotal: 50_000, filesDone: 5 });
  });

  it('finishes the backup when progress cannot be written, and says so once, at the end', async () => {
    // Prepare: the vault refuses every progress object.
    const source = await volumeOf(30, 10_000);
    const vault = new ProgressRecordingVault();
    vault.failProgress = true;
    const log: string[] = [];

    // Act
    const result = await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: NOW, chunker: SMALL_CHUNKS, workers: 1, progress: { now: steppingClock(1000), intervalMs: 1000, log: (l) => log.push(l) } });

    // Assess: a complete, restorable backup, and one warning naming the key.
    expect(result.files).toBe(30);
    expect(log).toEqual([expect.stringContaining(`cannot write progress to ${backupProgressKey('b1', VOLUME)}`)]);
    expect(log[0]).toContain('the copy went on without progress reports');
    const target = join(await tempDir('progress-restore'), 'target');
    await restoreVolume({ vault, volume: VOLUME, backupId: 'b1', target, workers: 0 });
    expect(await snapshotTree(target)).toEqual(await snapshotTree(source));
  });

  it('writes no progress unless asked (a standalone backup)', async () => {
    const vault = new ProgressRecordingVault();

    await backupVolume({ source: await volumeOf(3, 1000), vault, volume: VOLUME, backupId: 'b1', now: NOW, workers: 1 });

    expect(vault.progressWrites).toEqual([]);
  });

  it('writes a failed last object when the backup fails', async () => {
    const vault = new ProgressRecordingVault();

    await expect(backupVolume({ source: '/nonexistent/volume', vault, volume: VOLUME, backupId: 'b1', now: NOW, progress: { now: steppingClock(1000) } })).rejects.toThrow('is not a directory');

    expect(await readProgress(vault, backupProgressKey('b1', VOLUME))).toMatchObject({ phase: 'failed' });
  });
});

describe('progress of a restore (hydration)', () => {
  it('writes the hydration progress under the restore, against the totals the index records', async () => {
    const source = await volumeOf(12, 10_000);
    const vault = new ProgressRecordingVault();
    await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: NOW, workers: 1 });
    const target = join(await tempDir('progress-hydrate'), 'target');

    await restoreVolume({ vault, volume: VOLUME, backupId: 'b1', target, workers: 0, progress: { restoreId: 'b1-r1', now: steppingClock(1000), intervalMs: 2000 } });

    const first = vault.progressWrites.find((w) => w.phase === 'copying')!;
    expect(first).toMatchObject({ kind: 'hydrate', restoreId: 'b1-r1', filesTotal: 12, bytesTotal: 120_000 });
    expect(await readProgress(vault, restoreProgressKey('b1-r1', VOLUME))).toMatchObject({ phase: 'done', filesDone: 12, bytesDone: 120_000, etaSeconds: 0 });
  });

  it('writes no progress unless asked (a standalone restore)', async () => {
    const source = await volumeOf(2, 1000);
    const vault = new ProgressRecordingVault();
    await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: NOW, workers: 1 });

    await restoreVolume({ vault, volume: VOLUME, backupId: 'b1', target: join(await tempDir('progress-none'), 't'), workers: 0 });

    expect(vault.progressWrites).toEqual([]);
  });
});

describe('ProgressReporter', () => {
  it('skips updates inside the interval and writes the next one after it', async () => {
    // Prepare
    let t = NOW.getTime();
    const vault = new ProgressRecordingVault();
    const reporter = new ProgressReporter(vault, backupProgressKey('b1', VOLUME), { kind: 'export', volume: VOLUME, backupId: 'b1' }, { now: () => new Date(t), intervalMs: 5000 });
    reporter.start({ files: 10, bytes: 1000 });
    await new Promise((r) => setImmediate(r));

    // Act
    for (const [at, bytes] of [[1000, 100], [4999, 200], [5000, 300], [7000, 400], [10_000, 500]] as const) {
      t = NOW.getTime() + at;
      reporter.update({ files: 1, bytes });
      await new Promise((r) => setImmediate(r));
    }
    await reporter.finish('done', { files: 10, bytes: 1000 });

    // Assess
    expect(vault.progressWrites.map((w) => [w.phase, w.bytesDone])).toEqual([
      ['copying', 0],
      ['copying', 300],
      ['copying', 500],
      ['done', 1000],
    ]);
    expect(vault.progressWrites[1]).toMatchObject({ bytesPerSecond: 60, etaSeconds: 12 });
  });
});

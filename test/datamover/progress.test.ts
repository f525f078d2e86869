import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { backupVolume } from '../../core/datamover/backup.js';
import { PROGRESS_RETENTION_MS, ProgressReporter, readProgress, type VolumeProgress } from '../../core/datamover/progress.js';
import { restoreVolume } from '../../core/datamover/restore.js';
import { countTree, type TreeCount, type TreeTotals } from '../../core/datamover/walk.js';
import { FileVaultStore } from '../../core/vault/file-store.js';
import { backupProgressKey, PROGRESS_PREFIX, restoreProgressKey } from '../../core/vault/layout.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { S3VaultStore } from '../../core/vault/s3-store.js';
import { ObjectLockedError } from '../../core/vault/store.js';
import { Rng, SMALL_CHUNKS, snapshotTree, tempDir } from './helpers.js';

const NOW = new Date('2026-03-01T02:00:00Z');
const VOLUME = 'data-milvus-etcd-0';

/** A wall clock that moves `stepMs` each time it is read: time passes as the backup works, without sleeping. */
function steppingClock(stepMs: number): () => Date {
  let t = NOW.getTime();
  return () => new Date((t += stepMs));
}

const DAY_MS = 86_400_000;

/** Counts on the calling thread, done before the backup reads a file: totals known from its start. */
const countNow = (root: string): TreeCount => ({ totals: Promise.resolve(countTree(root)), stop: async () => {} });

/** A count that ends when the test says so; `ended` settles once the backup has seen its end. */
function gatedCount(): { count: (root: string) => TreeCount; end: () => void; fail: (err: Error) => void; stops: number; ended: Promise<unknown> } {
  const gate = { end: () => {}, fail: (_err: Error) => {}, stops: 0, ended: Promise.resolve() as Promise<unknown> };
  const count = (root: string): TreeCount => {
    const totals = new Promise<TreeTotals>((resolve, reject) => {
      gate.end = () => resolve(countTree(root));
      gate.fail = reject;
    });
    // Settles after the backup's own reactions to `totals` have run: they are queued on the
    // same settlement, and `await gate.ended` resumes only after they have.
    gate.ended = totals.then(
      () => {},
      () => {},
    );
    return {
      totals,
      stop: async () => {
        gate.stops++;
      },
    };
  };
  return {
    count,
    end: () => gate.end(),
    fail: (err) => gate.fail(err),
    get stops() {
      return gate.stops;
    },
    get ended() {
      return gate.ended;
    },
  };
}

/** A vault that records every progress object written, in order, and can refuse them. */
class ProgressRecordingVault extends InMemoryVaultStore {
  readonly progressWrites: VolumeProgress[] = [];
  failProgress = false;
  /** Called with each progress object as it is written. */
  onProgress: (progress: VolumeProgress) => void = () => {};
  constructor() {
    // The vault's clock is the test's: a progress object is locked a day from the reporter's clock.
    super('memory://vault', { now: () => NOW });
  }
  override async put(key: string, body: Uint8Array, options?: Parameters<InMemoryVaultStore['put']>[2]): Promise<void> {
    if (key.startsWith(PROGRESS_PREFIX)) {
      if (this.failProgress) throw new Error('AccessDenied: not allowed to write progress');
      const progress = JSON.parse(Buffer.from(body).toString('utf8')) as VolumeProgress;
      this.progressWrites.push(progress);
      this.onProgress(progress);
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
    const result = await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: NOW, chunker: SMALL_CHUNKS, workers: 1, countTree: countNow, progress: { now: steppingClock(1000), intervalMs: 5000 } });

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

    await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: NOW, chunker: SMALL_CHUNKS, workers: 1, countTree: countNow, progress: { now: steppingClock(1000), intervalMs: 1000 } });

    const middle = vault.progressWrites.find((w) => w.phase === 'copying' && w.bytesDone > 0 && w.bytesDone < 200_000)!;
    expect(middle).toMatchObject({ filesTotal: 20, bytesTotal: 200_000 });
    expect(middle.bytesPerSecond).toBeGreaterThan(0);
    expect(middle.etaSeconds).toBe(Math.round((200_000 - middle.bytesDone) / (middle.bytesPerSecond as number)));
  });

  it('copies while the totals are counted: phase counting with bytes done, then copying against the totals', async () => {
    // Prepare: the count ends only once a progress object shows bytes copied.
    const source = await volumeOf(20, 10_000);
    const gate = gatedCount();
    const vault = new ProgressRecordingVault();
    vault.onProgress = (p) => {
      if (p.phase === 'counting' && p.bytesDone > 0) gate.end();
    };

    // Act
    await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: NOW, chunker: SMALL_CHUNKS, workers: 1, countTree: gate.count, progress: { now: steppingClock(1000), intervalMs: 1000 } });

    // Assess: counting (copying already), then copying against the totals, then done; the count's thread stopped.
    const writes = vault.progressWrites;
    const firstCopying = writes.findIndex((w) => w.phase === 'copying');
    expect(writes.slice(0, firstCopying).every((w) => w.phase === 'counting' && w.filesTotal === null)).toBe(true);
    expect(writes.slice(0, firstCopying).some((w) => w.bytesDone > 0)).toBe(true);
    expect(writes[firstCopying]).toMatchObject({ filesTotal: 20, bytesTotal: 200_000 });
    expect(writes.at(-1)).toMatchObject({ phase: 'done', filesTotal: 20, bytesTotal: 200_000, bytesDone: 200_000 });
    expect(gate.stops).toBe(1);
  });

  it('ends complete when the count never lands, and says once, at the end, why there was no percentage', async () => {
    const source = await volumeOf(5, 10_000);
    const gate = gatedCount();
    const vault = new ProgressRecordingVault();
    const log: string[] = [];

    const result = await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: NOW, workers: 1, countTree: gate.count, progress: { now: steppingClock(1000), log: (l) => log.push(l) } });

    expect(result.files).toBe(5);
    expect(vault.progressWrites.slice(0, -1).every((w) => w.phase === 'counting')).toBe(true);
    expect(vault.progressWrites.at(-1)).toMatchObject({ phase: 'done', filesTotal: 5, bytesTotal: 50_000 });
    expect(log).toEqual([]);
    expect(gate.stops).toBe(1);
  });

  it('goes on copying without totals when the count fails, and says why once the backup has ended well', async () => {
    // Prepare: the count fails as soon as the first progress object is written.
    const source = await volumeOf(20, 10_000);
    const gate = gatedCount();
    const vault = new ProgressRecordingVault();
    vault.onProgress = (p) => {
      if (p.phase === 'counting') gate.fail(new Error(`EACCES: permission denied, scandir '${source}/segments'`));
    };
    const log: string[] = [];

    // Act
    await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: NOW, chunker: SMALL_CHUNKS, workers: 1, countTree: gate.count, progress: { now: steppingClock(1000), intervalMs: 1000, log: (l) => log.push(l) } });

    // Assess: copying (no totals) from the failure on, not "counting" to the end; the reason said at the end.
    const writes = vault.progressWrites;
    const firstCopying = writes.findIndex((w) => w.phase === 'copying');
    expect(firstCopying).toBeGreaterThan(0);
    expect(writes.slice(0, firstCopying).every((w) => w.phase === 'counting')).toBe(true);
    const copying = writes.slice(firstCopying, -1);
    expect(copying.every((w) => w.phase === 'copying' && w.filesTotal === null && w.bytesTotal === null)).toBe(true);
    expect(copying.at(-1)!.bytesDone).toBe(200_000);
    expect(writes.at(-1)).toMatchObject({ phase: 'done', filesTotal: 20, bytesTotal: 200_000 });
    expect(log).toEqual([`warning: cannot count the files to copy (EACCES: permission denied, scandir '${source}/segments'); progress reports showed no percentage`]);
  });

  it('goes on when no thread can be started to count, and says so once at the end', async () => {
    const source = await volumeOf(5, 10_000);
    const vault = new ProgressRecordingVault();
    const log: string[] = [];
    const noThread = (): TreeCount => {
      throw new Error('Worker threads are not allowed here');
    };

    const result = await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: NOW, workers: 1, countTree: noThread, progress: { now: steppingClock(1000), log: (l) => log.push(l) } });

    expect(result.files).toBe(5);
    expect(vault.progressWrites.at(-1)).toMatchObject({ phase: 'done', filesTotal: 5, bytesTotal: 50_000 });
    expect(log).toEqual(['warning: cannot count the files to copy (Worker threads are not allowed here); progress reports showed no percentage']);
  });

  it('ignores a count that lands after the backup has ended', async () => {
    const source = await volumeOf(5, 10_000);
    const gate = gatedCount();
    const vault = new ProgressRecordingVault();
    vault.onProgress = (p) => {
      if (p.phase === 'done') gate.end();
    };

    await backupVolume({ source, vault, volume: VOLUME, backupId: 'b1', now: NOW, workers: 1, countTree: gate.count, progress: { now: steppingClock(1000) } });
    await gate.ended;

    expect(vault.progressWrites.at(-1)).toMatchObject({ phase: 'done', filesTotal: 5, bytesTotal: 50_000 });
    expect(await readProgress(vault, backupProgressKey('b1', VOLUME))).toMatchObject({ phase: 'done' });
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
  it('writes copying without totals as soon as the count fails, and nothing after the last object', async () => {
    const vault = new ProgressRecordingVault();
    const reporter = new ProgressReporter(vault, backupProgressKey('b1', VOLUME), { kind: 'export', volume: VOLUME, backupId: 'b1' }, { now: () => NOW, log: () => {} });

    reporter.counting();
    reporter.start();
    reporter.countFailed('EACCES: permission denied');
    await reporter.settled();
    const beforeEnd = vault.progressWrites.map((w) => [w.phase, w.filesTotal]);
    await reporter.finish('failed');
    reporter.countFailed('EIO: i/o error');
    reporter.counted({ files: 1, bytes: 1 });
    await reporter.settled();

    expect(beforeEnd).toEqual([
      ['counting', null],
      ['copying', null],
    ]);
    expect(vault.progressWrites.map((w) => w.phase)).toEqual(['counting', 'copying', 'failed']);
  });

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

describe('progress under Object Lock', () => {
  /** Three writes of one report: start, an update after the interval, the end; `t` is the clock. */
  async function threeWrites(vault: ConstructorParameters<typeof ProgressReporter>[0], clock: { t: number }): Promise<ProgressReporter> {
    const reporter = new ProgressReporter(vault, backupProgressKey('b1', VOLUME), { kind: 'export', volume: VOLUME, backupId: 'b1' }, { now: () => new Date(clock.t), intervalMs: 5000 });
    // A write in flight makes the reporter skip an update: let each one land first (a file
    // vault's write under load can take longer than any number of event-loop turns).
    reporter.start({ files: 2, bytes: 200 });
    await reporter.settled();
    clock.t += 6000;
    reporter.update({ files: 1, bytes: 100 });
    await reporter.settled();
    clock.t += 6000;
    await reporter.finish('done', { files: 2, bytes: 200 });
    return reporter;
  }

  it('keeps the reports under their own top-level prefix, not under the backup or the restore', () => {
    expect(backupProgressKey('b1', VOLUME)).toBe(`progress/backups/b1/${VOLUME}.json`);
    expect(restoreProgressKey('b1-r1', VOLUME)).toBe(`progress/restores/b1-r1/${VOLUME}.json`);
  });

  it("locks each write for a day from its own time, not for the bucket's default retention", async () => {
    const clock = { t: NOW.getTime() };
    const vault = new InMemoryVaultStore('memory://vault', { now: () => new Date(clock.t) });

    await threeWrites(vault, clock);

    const puts = vault.puts.filter((p) => p.key.startsWith(PROGRESS_PREFIX));
    expect(puts.map((p) => p.retainUntil!.getTime() - NOW.getTime())).toEqual([DAY_MS, DAY_MS + 6000, DAY_MS + 12_000]);
    expect(PROGRESS_RETENTION_MS).toBe(DAY_MS);
  });

  it('replaces a report that is still locked in the local directory vault, as a new S3 version would, while a plain write over it is refused', async () => {
    // Prepare: a directory vault on the reporter's clock, so every report is still locked when the next one comes.
    const clock = { t: NOW.getTime() };
    const vault = new FileVaultStore(await tempDir('progress-locked'), { now: () => new Date(clock.t) });

    // Act
    const reporter = await threeWrites(vault, clock);

    // Assess: every write landed; the last one is what readers see, locked for a day.
    expect(reporter.writes).toBe(3);
    const key = backupProgressKey('b1', VOLUME);
    expect(await readProgress(vault, key)).toMatchObject({ phase: 'done', bytesDone: 200 });
    expect((await vault.head(key))!.retainUntil).toEqual(new Date(clock.t + DAY_MS));
    await expect(vault.put(key, Buffer.from('{}'))).rejects.toThrow(ObjectLockedError);
  });

  it('sends each report to S3 with its own Object Lock mode and retain-until date a day ahead', async () => {
    // Prepare
    const client = new S3Client({ region: 'us-east-1' });
    const s3 = mockClient(client);
    s3.on(PutObjectCommand).resolves({});
    const clock = { t: NOW.getTime() };
    const vault = new S3VaultStore({ bucket: 'milvus-guard-primary-123456789012-us-east-1', client, objectLockMode: 'COMPLIANCE', now: () => new Date(clock.t) });

    // Act
    await threeWrites(vault, clock);

    // Assess
    const inputs = s3.commandCalls(PutObjectCommand).map((c) => c.args[0].input);
    expect(inputs.map((i) => [i.Key, i.ObjectLockMode, i.ObjectLockRetainUntilDate])).toEqual([
      [`progress/backups/b1/${VOLUME}.json`, 'COMPLIANCE', new Date(NOW.getTime() + DAY_MS)],
      [`progress/backups/b1/${VOLUME}.json`, 'COMPLIANCE', new Date(NOW.getTime() + 6000 + DAY_MS)],
      [`progress/backups/b1/${VOLUME}.json`, 'COMPLIANCE', new Date(NOW.getTime() + 12_000 + DAY_MS)],
    ]);
    s3.restore();
  });
});

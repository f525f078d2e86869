import { randomBytes } from 'node:crypto';
import { beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { resolvePlan } from '../../core/config/resolve.js';
import type { Config } from '../../core/config/schema.js';
import { committedObjectKeys } from '../../core/objectstore/bucket-copy.js';
import { objectCopyCommitKey, objectCopyPrefix, objectManifestPageKey } from '../../core/objectstore/layout.js';
import type { GcProgress, PlanOutcome, RetentionRun } from '../../core/retention/contracts.js';
import { applyPolicy, collectGarbageStep, finishRetentionStep } from '../../core/retention/workflow.js';
import { packKey } from '../../core/vault/layout.js';
import type { VaultStore } from '../../core/vault/store.js';
import { backupInput } from '../backup/catalog-helpers.js';
import { bucketCopies, objectKeyOf, type BucketCopies } from './bucket-copies.js';
import { keysUnder } from './helpers.js';

// Retention of the bucket copies of S3-backed Milvus backups: the copied objects under
// milvus-objects/ are shared by backups as packs are, so garbage collection deletes one only when
// no live backup's commit references it, stops when a commit cannot be read, and lock extensions
// reach them. The copies are made by the real engine into a FileVaultStore.

const PLAN = 'milvus-production-backup';
const T0 = new Date('2031-01-05T02:00:00.000Z');
const DAY = 86_400_000;
let config: Config;
let copies: BucketCopies;
let vault: VaultStore;
let catalog: InMemoryCatalog;
let now = T0;

beforeAll(async () => {
  const example = await loadConfigFile('examples/production.yaml');
  config = { ...example, plans: example.plans.map((p) => ({ ...p, retention: { latest: 1 } })) };
});

beforeEach(async () => {
  now = T0;
  copies = await bucketCopies(() => now);
  vault = copies.vault;
  catalog = new InMemoryCatalog();
});

async function backup(id: string, startedAt: Date, files: Record<string, Buffer>, retainUntil?: Date): Promise<void> {
  const objectCopy = await copies.copy(id, files, retainUntil);
  await catalog.createBackup({ ...backupInput(id, startedAt.toISOString(), { plan: PLAN }), status: 'Available', objectCopy, ...(retainUntil ? { retainUntil: retainUntil.toISOString() } : {}) });
}

const run = (at: Date): RetentionRun => ({ runId: 'r', executionId: 'e', now: at.toISOString(), dryRun: false, vault: 'primary', plans: [PLAN], locked: [PLAN], skipped: [], collectGarbage: true });

async function collectAll(r: RetentionRun, slice = 32): Promise<GcProgress> {
  let gc: GcProgress | undefined;
  do gc = await collectGarbageStep({ vault, catalog, now: () => now, retention: { lockTtlSeconds: 60, gcSlicePrefixes: slice, keepSnapshots: 1 } }, r, gc);
  while (gc.next !== undefined);
  return gc;
}

const present = async (key: string): Promise<boolean> => (await vault.head(key)) !== undefined;

describe('garbage collection of copied Milvus objects', () => {
  const shared = randomBytes(3000);
  const onlyOld = randomBytes(2000);
  const onlyNew = randomBytes(1000);

  it('deletes an object only the expired backup referenced, keeps one a kept backup shares, and the expired manifest goes with its prefix', async () => {
    await backup('old', T0, { 'insert_log/1/shared': shared, 'insert_log/1/only-old': onlyOld });
    // Not a name a copy gives: not ours to delete.
    await vault.put('milvus-objects/00/notes.txt', Buffer.from('hands off'));
    await backup('new', new Date(T0.getTime() + DAY), { 'insert_log/1/shared': shared, 'insert_log/2/only-new': onlyNew });
    now = new Date('2031-02-01T12:00:00.000Z');

    const outcome = await applyPolicy({ catalog, vault }, run(now), resolvePlan(config, PLAN), await catalog.listBackups(), { keepSnapshots: 1 });
    const gc = await collectAll(run(now));

    expect(outcome.expired).toEqual([expect.objectContaining({ backupId: 'old', cleared: true })]);
    expect(await keysUnder(vault, objectCopyPrefix('old'))).toEqual([]);
    expect(gc.milvusObjects).toEqual({ scanned: 3, referenced: 2, deleted: 1, locked: 0, young: 0, failed: 0, bytesFreed: 2000 });
    expect(await present(objectKeyOf('insert_log/1/only-old', onlyOld))).toBe(false);
    expect(await present(objectKeyOf('insert_log/1/shared', shared))).toBe(true);
    expect(await present('milvus-objects/00/notes.txt')).toBe(true);
    // Everything the kept backup references is there.
    const record = (await catalog.getBackup('new'))!;
    for await (const key of committedObjectKeys({ backend: copies.backend }, { backupId: 'new', sha256: record.objectCopy!.sha256 })) expect([key, await present(key)]).toEqual([key, true]);
  });

  it('leaves an unreferenced object under Object Lock for a later run, which deletes it once the lock has passed', async () => {
    const lock = new Date('2031-03-01T00:00:00.000Z');
    await backup('old', T0, { 'insert_log/1/only-old': onlyOld }, lock);
    await backup('new', new Date(T0.getTime() + DAY), { 'insert_log/2/only-new': onlyNew }, lock);
    now = new Date('2031-02-01T12:00:00.000Z');
    await applyPolicy({ catalog, vault }, run(now), resolvePlan(config, PLAN), await catalog.listBackups(), { keepSnapshots: 1 });

    const first = await collectAll(run(now));
    expect(first.milvusObjects).toMatchObject({ deleted: 0, locked: 1 });
    expect(await present(objectKeyOf('insert_log/1/only-old', onlyOld))).toBe(true);

    now = new Date('2031-03-02T12:00:00.000Z');
    const later = await collectAll(run(now));
    expect(later.milvusObjects).toMatchObject({ deleted: 1, locked: 0 });
    expect(await present(objectKeyOf('insert_log/1/only-old', onlyOld))).toBe(false);
    expect(await present(objectKeyOf('insert_log/2/only-new', onlyNew))).toBe(true);
  });

  it("keeps an unreferenced copied object younger than the minimum age (its file's mtime on the local vault); a run a day later deletes it", async () => {
    await backup('kept', T0, { 'insert_log/1/shared': shared });
    // What a bucket copy without the lock (or one still in its grace period) wrote before its commit.
    const body = randomBytes(500);
    const key = objectKeyOf('insert_log/9/in-flight', body);
    await vault.put(key, body);
    let written: Date | undefined;
    for await (const o of vault.list(key)) written = o.lastModified;
    expect(Number.isFinite(written?.getTime())).toBe(true);

    const early = await collectAll(run(new Date(written!.getTime() + 3_600_000)));
    expect(early.milvusObjects).toMatchObject({ deleted: 0, young: 1 });
    expect(await present(key)).toBe(true);

    const later = await collectAll(run(new Date(written!.getTime() + 25 * 3_600_000)));
    expect(later.milvusObjects).toMatchObject({ deleted: 1, young: 0 });
    expect(await present(key)).toBe(false);
    expect(await present(objectKeyOf('insert_log/1/shared', shared))).toBe(true);
  });

  it.each([
    ['its commit was altered', async () => vault.put(objectCopyCommitKey('new'), Buffer.from('{"format":"milvus-guard/object-copy"}\n'))],
    ['a manifest page is missing', async () => vault.delete(objectManifestPageKey('new', 1))],
  ])('deletes no copied object while a kept backup\'s copy cannot be read (%s), and says which backup', async (_what, damage) => {
    await backup('old', T0, { 'insert_log/1/only-old': onlyOld });
    await backup('new', new Date(T0.getTime() + DAY), { 'insert_log/1/shared': shared, 'insert_log/2/only-new': onlyNew, 'insert_log/3/more': randomBytes(10) });
    // An unreferenced pack: the packs' collection goes on.
    const pack = packKey('ab'.repeat(16));
    await vault.put(pack, Buffer.from('pack'));
    // Damaged before retention locks it longer (the vault would refuse it then).
    await damage();
    now = new Date('2031-02-01T12:00:00.000Z');
    await applyPolicy({ catalog, vault }, run(now), resolvePlan(config, PLAN), await catalog.listBackups(), { keepSnapshots: 1 });

    const gc = await collectAll(run(now));

    expect(gc.milvusObjects).toMatchObject({ deleted: 0, stopped: expect.stringContaining('the bucket copy of kept backup new cannot be read') });
    expect(gc.errors).toEqual([gc.milvusObjects!.stopped]);
    expect(await present(objectKeyOf('insert_log/1/only-old', onlyOld))).toBe(true);
    expect(gc.packsDeleted).toBe(1);
    expect(await present(pack)).toBe(false);
    // The run's record says so too.
    await finishRetentionStep({ catalog, vault, events: { publish: async () => undefined }, now: () => now }, run(now), [], gc);
    expect((await catalog.listRetentionRuns())[0]).toMatchObject({ gcSkipped: gc.milvusObjects!.stopped });
  });
});

describe('lock extension of copied Milvus objects', () => {
  it('extends every copied object of a backup a rule now keeps longer, going on page by page over several calls', async () => {
    const plan = resolvePlan({ ...config, plans: config.plans.map((p) => ({ ...p, retention: { latest: 2 } })) }, PLAN);
    const initial = new Date('2031-01-06T02:00:00.000Z');
    const files = Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`insert_log/1/${i}`, randomBytes(100 + i)]));
    await backup('a', T0, files, initial);
    await backup('b', new Date(T0.getTime() + DAY), { 'insert_log/9/b': randomBytes(10) }, new Date('2040-01-01T00:00:00.000Z'));
    const at = new Date('2031-01-06T12:00:00.000Z');
    // Every call runs out of time at its second question: it extends a few objects and hands on.
    const apply = async (progress?: PlanOutcome): Promise<PlanOutcome> => {
      let asked = 0;
      return applyPolicy({ catalog, vault }, run(at), plan, await catalog.listBackups(), { keepSnapshots: 1, outOfTime: () => ++asked > 1, ...(progress?.resume ? { resume: progress.resume } : {}) });
    };

    const calls: PlanOutcome[] = [await apply()];
    while (calls.at(-1)!.resume && calls.length < 100) calls.push(await apply(calls.at(-1)));

    expect(calls.length).toBeGreaterThan(2);
    expect(calls.at(-1)!.errors).toEqual([]);
    const wanted = (await catalog.getBackup('a'))!.retainUntil!;
    expect(Date.parse(wanted)).toBeGreaterThan(initial.getTime());
    for (const [name, body] of Object.entries(files)) {
      const key = objectKeyOf(name, body);
      expect([key, (await vault.head(key))?.retainUntil?.toISOString()]).toEqual([key, wanted]);
    }
  });

  it('reports a backup whose copy cannot be read and keeps its old date', async () => {
    const plan = resolvePlan({ ...config, plans: config.plans.map((p) => ({ ...p, retention: { latest: 2 } })) }, PLAN);
    await backup('a', T0, { 'insert_log/1/x': randomBytes(10) }, new Date('2031-01-06T02:00:00.000Z'));
    await backup('b', new Date(T0.getTime() + DAY), { 'insert_log/9/b': randomBytes(10) }, new Date('2040-01-01T00:00:00.000Z'));
    await catalog.updateBackup('a', { objectCopy: { ...(await catalog.getBackup('a'))!.objectCopy!, sha256: '0'.repeat(64) } });

    const outcome = await applyPolicy({ catalog, vault }, run(new Date('2031-01-06T12:00:00.000Z')), plan, await catalog.listBackups(), { keepSnapshots: 1 });

    expect(outcome.errors).toEqual([expect.stringMatching(/^extending the lock of backup a: .*commit\.json .* has SHA-256 [0-9a-f]{64} where the backup's record commits to 0{64}/)]);
    expect((await catalog.getBackup('a'))!.retainUntil).toBe('2031-01-06T02:00:00.000Z');
  });
});

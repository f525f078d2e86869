import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { InMemoryCatalog } from '../../core/catalog/memory.js';
import { loadConfigFile } from '../../core/config/parse.js';
import { resolvePlan } from '../../core/config/resolve.js';
import type { Config } from '../../core/config/schema.js';
import { backupVolume } from '../../core/datamover/backup.js';
import type { GcProgress, PlanOutcome, RetentionRun } from '../../core/retention/contracts.js';
import { applyPolicy, applyRetentionStep, collectGarbageStep, recordArchivable, startRetentionStep } from '../../core/retention/workflow.js';
import { InMemoryVaultStore } from '../../core/vault/memory-store.js';
import { backupPrefix, packIdFromKey, PACKS_PREFIX, volumeIndexKey, volumeSummaryKey } from '../../core/vault/layout.js';
import type { DeleteManyResult } from '../../core/vault/store.js';
import { backupInput } from '../backup/catalog-helpers.js';
import { SMALL_CHUNKS, tempDir } from '../datamover/helpers.js';
import { keysUnder, packKeys, packsOf } from './helpers.js';

// The retention steps over the in-memory doubles and real data-mover backups: garbage
// collection in slices, what it keeps, and what it does when a delete fails or an index cannot
// be read. The whole workflow runs on the local cluster in local-workflow.test.ts.

const PLAN = 'milvus-production-backup';
const T0 = new Date('2031-01-05T02:00:00.000Z');
let config: Config;
let vault: InMemoryVaultStore;
let catalog: InMemoryCatalog;
let now = T0;

beforeAll(async () => {
  const example = await loadConfigFile('examples/production.yaml');
  config = { ...example, plans: example.plans.map((p) => ({ ...p, retention: { latest: 1 } })) };
});

beforeEach(() => {
  now = T0;
  vault = new InMemoryVaultStore('memory://vault', { now: () => now });
  catalog = new InMemoryCatalog();
});

async function backup(id: string, startedAt: Date, files: Record<string, Buffer>): Promise<void> {
  const dir = await tempDir('mg-retention-');
  await mkdir(join(dir, 'data'), { recursive: true });
  for (const [name, body] of Object.entries(files)) await writeFile(join(dir, 'data', name), body);
  await backupVolume({ source: dir, vault, volume: 'minio', backupId: id, now: startedAt, chunker: SMALL_CHUNKS, packSize: 32 * 1024, workers: 1 });
  await rm(dir, { recursive: true, force: true });
  await catalog.createBackup({ ...backupInput(id, startedAt.toISOString()), status: 'Available', components: [{ pvc: 'minio', role: 'object-storage', status: 'Exported' }] });
}

const run = (at: Date, over: Partial<RetentionRun> = {}): RetentionRun => ({ runId: 'r', executionId: 'e', now: at.toISOString(), dryRun: false, vault: 'primary', plans: [PLAN], locked: [PLAN], skipped: [], collectGarbage: true, ...over });

async function collectAll(r: RetentionRun, slice: number, plans: PlanOutcome[] = []): Promise<{ last: GcProgress; calls: number }> {
  let gc: GcProgress | undefined;
  let calls = 0;
  do {
    gc = await collectGarbageStep({ vault, catalog, now: () => now, retention: { lockTtlSeconds: 60, gcSlicePrefixes: slice, keepSnapshots: 1 } }, r, gc, plans);
    calls++;
  } while (gc.next !== undefined);
  return { last: gc, calls };
}

async function packCount(): Promise<number> {
  let n = 0;
  for await (const o of vault.list(PACKS_PREFIX)) if (packIdFromKey(o.key)) n++;
  return n;
}

describe('garbage collection', () => {
  const shared = randomBytes(150_000);

  beforeEach(async () => {
    await backup('old', T0, { 'shared.bin': shared, 'gone.bin': randomBytes(150_000) });
    await backup('new', new Date(T0.getTime() + 86_400_000), { 'shared.bin': shared });
  });

  it('works through the 256 pack prefixes in slices and deletes only what no remaining summary references', async () => {
    now = new Date('2031-02-01T12:00:00.000Z');
    const plan = resolvePlan(config, PLAN);
    const outcome = await applyPolicy({ catalog, vault }, run(now), plan, await catalog.listBackups(), { keepSnapshots: 1 });
    expect(outcome.expired.map((e) => [e.backupId, e.cleared])).toEqual([['old', true]]);
    const before = await packCount();

    const { last, calls } = await collectAll(run(now), 32);

    expect(calls).toBe(8);
    expect(last.next).toBeUndefined();
    expect(last.packsScanned).toBe(before);
    expect(last.packsDeleted).toBeGreaterThan(0);
    // Every pack of the file only "old" had goes, but the one pack it may share with "new"'s file.
    expect(last.bytesFreed).toBeGreaterThanOrEqual(150_000 - 32 * 1024);
    expect(await packCount()).toBe(before - last.packsDeleted);
    // What "new" needs is all there.
    const { verifyVault } = await import('../../core/datamover/verify.js');
    expect((await verifyVault({ vault, readData: true })).problems).toEqual([]);
  });

  it('reports a delete that fails for another reason than Object Lock and goes on; the next run deletes it', async () => {
    now = new Date('2031-02-01T12:00:00.000Z');
    await applyPolicy({ catalog, vault }, run(now), resolvePlan(config, PLAN), await catalog.listBackups(), { keepSnapshots: 1 });
    const deleteMany = vault.deleteMany.bind(vault);
    let failing = true;
    vault.deleteMany = async (keys: readonly string[]): Promise<DeleteManyResult> => {
      if (!failing || keys.length === 0) return deleteMany(keys);
      const [first, ...rest] = keys;
      const r = await deleteMany(rest);
      return { deleted: r.deleted, failed: [...r.failed, { key: first!, error: new Error('InternalError: We encountered an internal error. Please try again.') }] };
    };

    const { last } = await collectAll(run(now), 256);

    expect(last.packsFailed).toBe(1);
    expect(last.errors).toEqual([expect.stringContaining('InternalError')]);
    failing = false;
    const again = await collectAll(run(now), 256);
    expect(again.last).toMatchObject({ packsDeleted: 1, packsFailed: 0, errors: [] });
  });

  it('leaves an expired backup whole when one of its summaries cannot be deleted, so garbage collection still reads its index; the next run clears it', async () => {
    now = new Date('2031-02-01T12:00:00.000Z');
    const deleteMany = vault.deleteMany.bind(vault);
    const summary = volumeSummaryKey('old', 'minio');
    let failing = true;
    vault.deleteMany = async (keys: readonly string[]): Promise<DeleteManyResult> => {
      if (!failing || !keys.includes(summary)) return deleteMany(keys);
      const r = await deleteMany(keys.filter((k) => k !== summary));
      return { deleted: r.deleted, failed: [...r.failed, { key: summary, error: new Error('InternalError: We encountered an internal error. Please try again.') }] };
    };

    const outcome = await applyPolicy({ catalog, vault }, run(now), resolvePlan(config, PLAN), await catalog.listBackups(), { keepSnapshots: 1 });
    const { last } = await collectAll(run(now), 256);

    expect(outcome.expired.map((e) => [e.backupId, e.cleared])).toEqual([['old', false]]);
    expect(outcome.errors).toEqual([expect.stringContaining('InternalError')]);
    expect(await keysUnder(vault, backupPrefix('old'))).toContain(volumeIndexKey('old', 'minio'));
    // The summary still names the index, which is still there: nothing "old" needs is collected.
    expect(last).toMatchObject({ packsDeleted: 0, errors: [] });
    failing = false;
    await applyPolicy({ catalog, vault }, run(now), resolvePlan(config, PLAN), await catalog.listBackups(), { keepSnapshots: 1 });
    expect((await catalog.getBackup('old'))?.expired?.cleared).toBe(true);
    expect(await keysUnder(vault, backupPrefix('old'))).toEqual([]);
    expect((await collectAll(run(now), 256)).last.packsDeleted).toBeGreaterThan(0);
  });

  it('stops when an index cannot be read: with one reference unknown nothing is proven unreferenced', async () => {
    await vault.put(volumeIndexKey('new', 'minio'), Buffer.from('not gzip'));
    const before = await packCount();

    await expect(collectGarbageStep({ vault, catalog, now: () => now, retention: { lockTtlSeconds: 60, gcSlicePrefixes: 256, keepSnapshots: 1 } }, run(now), undefined)).rejects.toThrow();
    expect(await packCount()).toBe(before);
  });

  it('collects nothing when a plan of the vault was skipped, and says why', async () => {
    const gc = await collectGarbageStep({ vault, catalog, now: () => now, retention: { lockTtlSeconds: 60, gcSlicePrefixes: 256, keepSnapshots: 1 } }, run(now, { collectGarbage: false, skipped: [{ plan: PLAN, reason: 'backup b running' }] }), undefined);
    expect(gc).toMatchObject({ packsDeleted: 0, skipped: `not every plan of the vault was locked (${PLAN}: backup b running)` });
  });
});

describe('StartRetention', () => {
  it('takes every plan lock of the vault; a plan whose backup runs is skipped and then no garbage is collected', async () => {
    await catalog.acquireLock(PLAN, { backupId: 'b-running', executionId: 'arn:backup' }, T0, new Date(T0.getTime() + 3_600_000));

    const r = await startRetentionStep({ config, catalog, retention: { lockTtlSeconds: 60, gcSlicePrefixes: 64, keepSnapshots: 1 } }, 'primary', { input: { all: true }, execution: { id: 'arn:retention', startTime: T0.toISOString() } });

    expect(r).toMatchObject({ plans: [], locked: [], skipped: [{ plan: PLAN, reason: 'backup b-running is running' }], collectGarbage: false });
  });

  it('refuses an input that names neither one plan nor all, or a plan of another vault', async () => {
    const s = { config, catalog, retention: { lockTtlSeconds: 60, gcSlicePrefixes: 64, keepSnapshots: 1 } };
    const execution = { id: 'arn:retention', startTime: T0.toISOString() };
    await expect(startRetentionStep(s, 'primary', { input: {}, execution })).rejects.toMatchObject({ name: 'InvalidInput' });
    await expect(startRetentionStep(s, 'primary', { input: { plan: 'nope' }, execution })).rejects.toThrow('plan: nope is not a plan of vault primary');
    expect(await catalog.lockHolder(PLAN, T0)).toBeUndefined();
  });
});

describe('lock extension', () => {
  it('locks a backup kept until further notice, its first lock lapsed, for six days from the run, renewed only once three are left', async () => {
    // An on-demand plan (no schedule): "latest" and "newest available" keep its only backup with
    // no end date, so a lock that ends at the run would protect nothing.
    const onDemand: Config = { ...config, plans: config.plans.map((p) => ({ ...p, schedule: undefined, retention: { latest: 1 } })) };
    const plan = resolvePlan(onDemand, PLAN);
    const aheadMs = 6 * 86_400_000;
    await backup('only', T0, { 'a.bin': randomBytes(50_000) });
    const objects = (await keysUnder(vault, backupPrefix('only'))).length + (await packsOf(vault, 'only')).size + 1;
    const dates: Date[] = [];
    const extend = vault.extendRetention.bind(vault);
    vault.extendRetention = async (key, until) => {
      dates.push(until);
      return extend(key, until);
    };
    const applyAt = async (at: Date): Promise<PlanOutcome> => {
      now = at;
      dates.length = 0;
      return applyPolicy({ catalog, vault }, run(at), plan, await catalog.listBackups(), { keepSnapshots: 1 });
    };

    const first = new Date(T0.getTime() + 400 * 86_400_000);
    const locked = new Date(first.getTime() + aheadMs);
    const outcome = await applyAt(first);
    expect(outcome.kept).toEqual([expect.objectContaining({ backupId: 'only', rules: ['latest', 'newest-available'], retainUntil: locked.toISOString() })]);
    expect(dates.length).toBe(objects);
    expect(dates.every((d) => d.getTime() === locked.getTime())).toBe(true);
    expect(outcome.locksExtended).toBe(objects);
    expect(outcome.errors).toEqual([]);
    expect((await catalog.getBackup('only'))?.retainUntil).toBe(locked.toISOString());

    // The next days, more than three days of lock are left: nothing is extended.
    expect((await applyAt(new Date(first.getTime() + 86_400_000))).locksExtended).toBe(0);
    expect(dates).toEqual([]);

    // Less than three left: renewed from that run, every object again.
    const later = new Date(locked.getTime() - 2 * 86_400_000);
    const renewed = await applyAt(later);
    expect(renewed.kept[0]!.retainUntil).toBe(new Date(later.getTime() + aheadMs).toISOString());
    expect(renewed.locksExtended).toBe(objects);
    expect((await catalog.getBackup('only'))?.retention).toEqual({ rules: ['latest', 'newest-available'], evaluatedAt: later.toISOString() });
  });

  it('renews no date for a backup kept only by its legal hold: the hold protects it, and a date would outlast a release', async () => {
    await backup('held', T0, { 'a.bin': randomBytes(50_000) });
    await backup('newest', new Date(T0.getTime() + 86_400_000), { 'b.bin': randomBytes(50_000) });
    now = new Date(T0.getTime() + 400 * 86_400_000);
    await catalog.updateBackup('held', { hold: { reason: 'litigation', at: now.toISOString() } }, { onlyIf: ['Available'] });
    const extended: string[] = [];
    const extend = vault.extendRetention.bind(vault);
    vault.extendRetention = async (key, until) => {
      extended.push(key);
      return extend(key, until);
    };

    const outcome = await applyPolicy({ catalog, vault }, run(now), resolvePlan(config, PLAN), await catalog.listBackups(), { keepSnapshots: 1 });

    expect(outcome.kept.map((k) => [k.backupId, k.rules])).toEqual([
      ['newest', ['latest', 'newest-available']],
      ['held', ['hold']],
    ]);
    expect(extended.filter((k) => k.startsWith(backupPrefix('held')))).toEqual([]);
    expect(extended.filter((k) => k.startsWith(backupPrefix('newest'))).length).toBeGreaterThan(0);
    expect(outcome.errors).toEqual([]);
    expect(await catalog.getBackup('held')).toMatchObject({ retention: { rules: ['hold'], evaluatedAt: now.toISOString() } });
    expect((await catalog.getBackup('held'))?.retainUntil).toBeUndefined();
  });
});

describe('tiering by reference', () => {
  it('tags archivable the packs only a backup that left the hot set references, once, and never a pack a hot backup needs', async () => {
    const monthly: Config = { ...config, plans: config.plans.map((p) => ({ ...p, retention: { latest: 1, monthly: 2, dateOfMonth: 1 } })) };
    const plan = resolvePlan(monthly, PLAN);
    const shared = randomBytes(150_000);
    await backup('first', new Date('2031-01-01T02:00:00.000Z'), { 'shared.bin': shared, 'only-first.bin': randomBytes(150_000) });
    await backup('second', new Date('2031-01-02T02:00:00.000Z'), { 'shared.bin': shared });
    now = new Date('2031-01-02T12:00:00.000Z');

    const outcome = await applyPolicy({ catalog, vault }, run(now), plan, await catalog.listBackups(), { keepSnapshots: 1 });
    expect(outcome).toMatchObject({ hot: ['second'], cooled: ['first'] });
    const { last } = await collectAll(run(now), 64, [outcome]);

    expect(last.packsArchivable).toBeGreaterThan(0);
    const needed = await packsOf(vault, 'second');
    for (const key of await packKeys(vault)) expect(await vault.isArchivable(key)).toBe(!needed.has(key) && (await packsOf(vault, 'first')).has(key));

    await recordArchivable({ catalog }, run(now), [outcome], last);
    // The next run finds "first" kept by its monthly rule, its packs tagged: nothing to tag again.
    const again = await applyPolicy({ catalog, vault }, run(now), plan, await catalog.listBackups(), { keepSnapshots: 1 });
    expect(again.cooled).toEqual([]);
    expect((await collectAll(run(now), 64, [again])).last.packsArchivable).toBe(0);
  });

  it('marks nothing archivable after a run of one plan in a vault of several, so a later full run still tags', async () => {
    const monthly: Config = { ...config, plans: config.plans.map((p) => ({ ...p, retention: { latest: 1, monthly: 2, dateOfMonth: 1 } })) };
    const plan = resolvePlan(monthly, PLAN);
    await backup('first', new Date('2031-01-01T02:00:00.000Z'), { 'only-first.bin': randomBytes(150_000) });
    await backup('second', new Date('2031-01-02T02:00:00.000Z'), { 'b.bin': randomBytes(1000) });
    now = new Date('2031-01-02T12:00:00.000Z');
    // Started for one plan: the run holds the vault's other plan's lock too, but has no hot set for it.
    const onePlan = run(now, { plans: [PLAN], locked: [PLAN, 'another-plan'] });
    const outcome = await applyPolicy({ catalog, vault }, onePlan, plan, await catalog.listBackups(), { keepSnapshots: 1 });
    const { last } = await collectAll(onePlan, 64, [outcome]);
    expect([outcome.cooled, last.packsArchivable]).toEqual([['first'], 0]);

    await recordArchivable({ catalog }, onePlan, [outcome], last);

    expect((await catalog.getBackup('first'))?.archivable).toBeUndefined();
    const full = await applyPolicy({ catalog, vault }, run(now), plan, await catalog.listBackups(), { keepSnapshots: 1 });
    expect(full.cooled).toEqual(['first']);
    expect((await collectAll(run(now), 64, [full])).last.packsArchivable).toBeGreaterThan(0);
  });
});

describe('what retention leaves alone', () => {
  beforeEach(async () => {
    await backup('old', T0, { 'a.bin': randomBytes(50_000) });
    await backup('new', new Date(T0.getTime() + 86_400_000), { 'a.bin': randomBytes(50_000) });
    now = new Date('2031-02-01T12:00:00.000Z');
  });

  it('does not expire a backup whose legal hold was recorded after the run read the records', async () => {
    const stale = await catalog.listBackups();
    await catalog.updateBackup('old', { hold: { reason: 'litigation', at: now.toISOString() } }, { onlyIf: ['Available'] });

    const outcome = await applyPolicy({ catalog, vault }, run(now), resolvePlan(config, PLAN), stale, { keepSnapshots: 1 });

    expect(outcome.expired).toEqual([]);
    expect(await catalog.getBackup('old')).toMatchObject({ status: 'Available', hold: { reason: 'litigation' } });
  });

  it('keeps a backup a restore is reading, with its snapshots', async () => {
    const deleted: string[] = [];

    const outcome = await applyPolicy({ catalog, vault }, run(now), resolvePlan(config, PLAN), await catalog.listBackups(), {
      keepSnapshots: 1,
      restoring: new Set(['old']),
      deleteSnapshots: async (_ns, id) => (deleted.push(id), 1),
    });

    expect(outcome.kept.map((k) => [k.backupId, k.rules])).toEqual([
      ['new', ['latest', 'newest-available']],
      ['old', ['restoring']],
    ]);
    expect(outcome.expired).toEqual([]);
    expect(deleted).toEqual([]);
  });

  it('records a cluster that does not answer as an error of that backup, and clears it on a later run', async () => {
    let answer = false;
    const deleteSnapshots = async (): Promise<number> => {
      if (!answer) throw new Error('connect ETIMEDOUT 10.0.0.1:443');
      return 2;
    };

    const first = await applyPolicy({ catalog, vault }, run(now), resolvePlan(config, PLAN), await catalog.listBackups(), { keepSnapshots: 1, deleteSnapshots });

    expect(first.expired).toEqual([expect.objectContaining({ backupId: 'old', cleared: false })]);
    expect(first.errors).toEqual(['deleting the VolumeSnapshots of backup old: connect ETIMEDOUT 10.0.0.1:443']);
    answer = true;
    const second = await applyPolicy({ catalog, vault }, run(now), resolvePlan(config, PLAN), await catalog.listBackups(), { keepSnapshots: 1, deleteSnapshots });
    expect(second).toMatchObject({ snapshotsDeleted: 2, errors: [] });
    expect(await catalog.getBackup('old')).toMatchObject({ status: 'Expired', expired: { cleared: true } });
  });

  it('collects no garbage while a backup of the vault is InProgress in the catalog', async () => {
    await catalog.createBackup(backupInput('crashed', T0.toISOString(), { plan: PLAN }));

    const r = await startRetentionStep({ config, catalog, retention: { lockTtlSeconds: 60, gcSlicePrefixes: 64, keepSnapshots: 1 } }, 'primary', { input: { all: true }, execution: { id: 'arn:retention', startTime: now.toISOString() } });

    expect(r).toMatchObject({ collectGarbage: false, gcSkipped: expect.stringContaining('backup crashed is InProgress') });
    expect((await collectGarbageStep({ vault, catalog, now: () => now, retention: { lockTtlSeconds: 60, gcSlicePrefixes: 256, keepSnapshots: 1 } }, r, undefined)).skipped).toContain('backup crashed is InProgress');
  });

  it('renews the run\'s plan locks at each garbage-collection slice, and stops when a backup took one that lapsed', async () => {
    const services = { vault, catalog, now: () => now, retention: { lockTtlSeconds: 3600, gcSlicePrefixes: 64, keepSnapshots: 1 } };
    const first = await collectGarbageStep(services, run(now), undefined);
    expect(await catalog.lockHolder(PLAN, new Date(now.getTime() + 3599_000))).toMatchObject({ executionId: 'e', purpose: 'retention' });
    await catalog.releaseLock(PLAN, 'e');
    const packs = await packCount();

    // The lock lapsed between two slices and a backup of the plan took it.
    await catalog.acquireLock(PLAN, { backupId: 'b-new', executionId: 'arn:b-new' }, now, new Date(now.getTime() + 3600_000));
    const second = await collectGarbageStep(services, run(now), first);

    expect(second.next).toBeUndefined();
    expect(second.skipped).toBe(`from prefix 40 on: the run's lock of ${PLAN} lapsed and a backup took it; the next run collects the rest`);
    expect(await packCount()).toBe(packs);
    expect(await catalog.lockHolder(PLAN, now)).toMatchObject({ backupId: 'b-new' });
  });
});

describe('keepSnapshots', () => {
  it("keeps the VolumeSnapshots of the policy's newest keepSnapshots Available backups and deletes the others'", async () => {
    const plan = resolvePlan({ ...config, plans: config.plans.map((p) => ({ ...p, retention: { latest: 3, keepSnapshots: 2 } })) }, PLAN);
    for (const d of [1, 2, 3]) await backup(`b-${d}`, new Date(T0.getTime() + d * 86_400_000), { 'a.bin': randomBytes(1000) });
    const deleted: string[] = [];

    await applyPolicy({ catalog, vault }, run(new Date('2031-01-09T12:00:00.000Z')), plan, await catalog.listBackups(), { keepSnapshots: plan.retention.keepSnapshots ?? 1, deleteSnapshots: async (_ns, id) => (deleted.push(id), 1) });

    expect(deleted).toEqual(['b-1']);
  });
});

describe('lock extension of a large backup', () => {
  it('hands the rest to its next call when the Task runs out of time; the record takes the new date once every object has it, and expiries wait for the last call', async () => {
    const plan = resolvePlan({ ...config, plans: config.plans.map((p) => ({ ...p, retention: { latest: 2 } })) }, PLAN);
    await backup('old', new Date(T0.getTime() - 86_400_000), { 'old.bin': randomBytes(1000) });
    await backup('a', T0, { 'a.bin': randomBytes(200_000) });
    await backup('b', new Date(T0.getTime() + 86_400_000), { 'b.bin': randomBytes(1000) });
    await catalog.updateBackup('a', { retainUntil: '2031-01-06T02:00:00.000Z' });
    // b is locked longer than any rule keeps it already: only a's objects are extended.
    await catalog.updateBackup('b', { retainUntil: '2040-01-01T00:00:00.000Z' });
    const at = new Date('2031-01-06T12:00:00.000Z');
    // Each of the 16 workers asks before each object but the call's first: every call runs out
    // of time at the second question, so it extends two objects and hands on the rest.
    const apply = async (progress?: PlanOutcome): Promise<PlanOutcome> => {
      let asked = 0;
      const outcome = await applyPolicy({ catalog, vault }, run(at), plan, await catalog.listBackups(), { keepSnapshots: 1, outOfTime: () => ++asked > 1, ...(progress?.resume ? { resume: progress.resume } : {}) });
      return progress ? { ...outcome, locksExtended: progress.locksExtended + outcome.locksExtended } : outcome;
    };

    const calls: PlanOutcome[] = [await apply()];
    while (calls.at(-1)!.resume && calls.length < 100) calls.push(await apply(calls.at(-1)));

    const offsets = calls.slice(0, -1).map((c) => c.resume!);
    expect(offsets.length).toBeGreaterThan(1);
    expect(offsets.every((r) => r.backupId === 'a')).toBe(true);
    // Every call went on from where the one before stopped: strictly forward.
    for (let i = 1; i < offsets.length; i++) expect(offsets[i]!.offset).toBeGreaterThan(offsets[i - 1]!.offset);
    // Until the last call, the record keeps its old date and nothing expires.
    for (const c of calls.slice(0, -1)) expect(c.expired).toEqual([]);
    const last = calls.at(-1)!;
    expect(last).toMatchObject({ errors: [], expired: [{ backupId: 'old' }] });
    const wanted = (await catalog.getBackup('a'))!.retainUntil!;
    expect(Date.parse(wanted)).toBeGreaterThan(Date.parse('2031-01-06T02:00:00.000Z'));
    // Each of a's objects was extended exactly once over all the calls, and has the new date.
    const objects = [...(await keysUnder(vault, backupPrefix('a'))), volumeSummaryKey('a', 'minio'), ...(await packsOf(vault, 'a'))];
    expect(last.locksExtended).toBe(objects.length);
    for (const key of objects) expect([key, (await vault.head(key))?.retainUntil?.toISOString()]).toEqual([key, wanted]);
  });

  it('ApplyPlan adds its calls up: counts and errors of the earlier calls, this call\'s decisions', async () => {
    const plan = PLAN;
    await catalog.createBackup({ ...backupInput('a', T0.toISOString(), { plan }), status: 'Available', components: [] });
    const earlier: PlanOutcome = { plan, kept: [], expired: [], locksExtended: 7, snapshotsDeleted: 1, objectsDeleted: 2, objectsLocked: 3, objectsFailed: 1, errors: ['deleting: x'], hot: [], cooled: [], resume: { backupId: 'gone', offset: 4 } };
    const outcome = await applyRetentionStep({ config, catalog, vault, now: () => now, kube: () => Promise.reject(new Error('no cluster here')), retention: { lockTtlSeconds: 60, gcSlicePrefixes: 256, keepSnapshots: 1 } }, run(new Date('2031-01-05T12:00:00.000Z')), plan, earlier);
    expect(outcome).toMatchObject({ kept: [{ backupId: 'a' }], locksExtended: 7, objectsDeleted: 2, objectsLocked: 3, errors: ['deleting: x'] });
    expect(outcome.resume).toBeUndefined();
  });
});
